// The rider app: sign up, pick places, quote, confirm, follow the ride live, receipt, history and loyalty.

import { ApiError, newKey, newTraceparent, riderApi } from "./api.js";
import { humanMessage } from "./errors.js";
import { TERMINAL, STATUS_TEXT, dateTime, el, money, quoteText, time } from "./format.js";
import { PlaceField } from "./places.js";
import { LiveRide } from "./ride.js";
import { PushSocket } from "./ws.js";
import { CityMap } from "../lib/map.js";

const TOKEN_KEY = "acr.token";
const $ = (id) => document.getElementById(id);

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  places: { pickup: null, dropoff: null },
  tapTarget: "pickup",
  quote: null,
  confirmation: null, // {quoteId, key}: the Idempotency-Key of this confirmation, kept for retries
  busy: false,
  live: null, // LiveRide
  socket: null,
  map: null,
  resumes: new Set(),
};

const api = riderApi({ token: () => state.token, onUnauthorized: () => signOut(humanMessage({ code: "unauthorized" })) });

// --- alerts ----------------------------------------------------------------------------------------
function showError(err) {
  if (err?.name === "AbortError") return;
  if (err instanceof ApiError && err.status === 401) return; // signOut already said it
  if (!(err instanceof ApiError)) console.warn(err);
  showAlert(humanMessage(err), "error", err?.code);
}

function showAlert(text, kind = "error", code = "") {
  const box = $("alert");
  box.textContent = text;
  box.className = `alert ${kind}`;
  box.dataset.code = code ?? "";
  box.hidden = false;
}

function clearAlert() {
  const box = $("alert");
  box.hidden = true;
  box.textContent = "";
  box.dataset.code = "";
}

function setConnection(status) {
  const node = $("connection");
  node.dataset.state = status;
  node.textContent = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", closed: "" }[status] ?? "";
}

// --- screens ---------------------------------------------------------------------------------------
function show(screen) {
  for (const id of ["signup", "book", "ride"]) $(id).hidden = id !== screen;
  document.body.dataset.screen = screen;
}

function signOut(message) {
  if (!state.token && document.body.dataset.screen === "signup") return;
  state.token = null;
  localStorage.removeItem(TOKEN_KEY);
  state.socket?.stop();
  state.socket = null;
  state.live?.destroy();
  state.live = null;
  resetBooking();
  $("account").hidden = true;
  show("signup");
  if (message) showAlert(message, "error", "unauthorized");
}

async function signUp(event) {
  event.preventDefault();
  const name = $("name").value.trim();
  if (!name) return;
  const button = $("signup-button");
  button.disabled = true;
  try {
    const { token } = await api.signUp(name);
    state.token = token;
    localStorage.setItem(TOKEN_KEY, token);
    clearAlert();
    await enter();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

/** Signed in: map, socket, account, history; back into a ride in flight if there is one. */
async function enter() {
  show("book");
  ensureMap();
  connectSocket();
  refreshAccount();
  const rides = await refreshHistory();
  const active = rides?.find((r) => !TERMINAL.has(r.status));
  if (active) {
    try {
      startRide(await api.ride(active.rideId));
    } catch (err) {
      showError(err);
    }
  }
}

// --- map -------------------------------------------------------------------------------------------
function ensureMap() {
  if (state.map) return;
  state.map = new CityMap($("map"), {
    loadStreets: (bbox, zoom, signal) => api.map(bbox, zoom, signal),
    onTap: (point) => tapMap(point),
    onError: (err) => showError(err),
  });
  window.__acr.map = state.map;
  state.map.init().catch(showError);
}

function drawMarkers() {
  if (!state.map) return;
  if (state.live) {
    state.map.setMarkers(state.live.markers());
    return;
  }
  const markers = [];
  const { pickup, dropoff } = state.places;
  if (pickup) markers.push({ id: "pickup", kind: "pickup", lat: pickup.lat, lon: pickup.lon, label: "A", animate: false });
  if (dropoff) markers.push({ id: "dropoff", kind: "dropoff", lat: dropoff.lat, lon: dropoff.lon, label: "B", animate: false });
  state.map.setMarkers(markers);
}

async function tapMap({ lat, lon }) {
  if (document.body.dataset.screen !== "book" || state.busy) return;
  const target = state.tapTarget;
  try {
    const place = await api.reverse(lat, lon);
    clearAlert();
    fields[target].set(place);
    choose(target, place);
    if (target === "pickup") setTapTarget("dropoff");
  } catch (err) {
    showError(err);
  }
}

function setTapTarget(target) {
  state.tapTarget = target;
  for (const button of document.querySelectorAll("[data-tap-target]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tapTarget === target));
  }
}

// --- booking ---------------------------------------------------------------------------------------
const fields = {};

function setupFields() {
  for (const which of ["pickup", "dropoff"]) {
    fields[which] = new PlaceField($(`${which}-field`), {
      search: async (text, signal) => (await api.autocomplete(text, 6, signal)).results,
      onChoose: (place) => choose(which, place),
      onError: showError,
    });
  }
}

function choose(which, place) {
  state.places[which] = place;
  state.quote = null;
  state.confirmation = null;
  renderQuote();
  drawMarkers();
  const { pickup, dropoff } = state.places;
  if (place && state.map) state.map.fitPoints([pickup, dropoff].filter(Boolean));
  if (place && which === "pickup" && !dropoff) setTapTarget("dropoff");
  $("quote-button").disabled = !(pickup && dropoff);
  if (pickup && dropoff) requestQuote();
}

function placeRef(place) {
  return place.addressId ? { addressId: place.addressId } : { lat: place.lat, lon: place.lon };
}

async function requestQuote() {
  const { pickup, dropoff } = state.places;
  if (!pickup || !dropoff || state.busy) return;
  state.busy = true;
  $("quote-button").disabled = true;
  $("quote-status").textContent = "Getting a price…";
  try {
    const traceparent = newTraceparent(); // the trip's trace: this quote, then its booking
    const quote = await api.quote(placeRef(pickup), placeRef(dropoff), traceparent);
    if (state.places.pickup !== pickup || state.places.dropoff !== dropoff) return;
    state.quote = { ...quote, traceparent };
    state.confirmation = null;
    clearAlert();
  } catch (err) {
    state.quote = null;
    showError(err);
  } finally {
    state.busy = false;
    $("quote-status").textContent = "";
    $("quote-button").disabled = !(state.places.pickup && state.places.dropoff);
    renderQuote();
  }
}

function renderQuote() {
  const card = $("quote");
  const q = state.quote;
  card.hidden = !q;
  if (!q) return;
  $("quote-text").textContent = quoteText(q);
  $("quote-detail").textContent = `${(q.distanceMeters / 1000).toFixed(1)} km · price held until ${time(q.expiresAt)}`;
  $("confirm-button").disabled = false;
}

async function confirmRide() {
  const q = state.quote;
  if (!q || state.busy) return;
  if (state.confirmation?.quoteId !== q.quoteId) state.confirmation = { quoteId: q.quoteId, key: newKey() };
  const { key } = state.confirmation;
  state.busy = true;
  $("confirm-button").disabled = true;
  $("quote-status").textContent = "Booking…";
  try {
    const ride = await api.book(q.quoteId, key, q.traceparent);
    state.confirmation = null;
    clearAlert();
    startRide(ride);
  } catch (err) {
    // Same confirmation retried after a network failure: same key, so never a second ride.
    const retryable = err instanceof ApiError && (err.isNetwork || err.status >= 500);
    if (!retryable) {
      state.confirmation = null;
      if (["quote_expired", "quote_already_used", "quote_not_found", "idempotency_key_conflict"].includes(err?.code)) {
        state.quote = null;
        renderQuote();
        $("quote-button").disabled = !(state.places.pickup && state.places.dropoff);
      }
    }
    showError(err);
  } finally {
    state.busy = false;
    $("quote-status").textContent = "";
    if (state.quote) $("confirm-button").disabled = false;
  }
}

function resetBooking() {
  state.places = { pickup: null, dropoff: null };
  state.quote = null;
  state.confirmation = null;
  fields.pickup?.clear();
  fields.dropoff?.clear();
  setTapTarget("pickup");
  $("quote-button").disabled = true;
  renderQuote();
}

// --- the ride ------------------------------------------------------------------------------------
function startRide(ride) {
  state.live?.destroy();
  state.resumes.clear();
  state.live = new LiveRide($("ride"), {
    onCancel: cancelRide,
    onResume: resume,
    onChange: drawMarkers,
    onFinished: () => {
      refreshAccount();
      refreshHistory();
    },
  });
  window.__acr.ride = state.live;
  state.live.start(ride);
  show("ride");
  state.map?.fitPoints([ride.pickup, ride.dropoff]);
  resume(ride.rideId, ride.version);
}

function resume(rideId, afterVersion) {
  const key = `${rideId}@${afterVersion}`;
  if (state.resumes.has(key)) return;
  if (state.socket?.send({ type: "resume", rideId, afterVersion })) state.resumes.add(key);
}

async function cancelRide(ride) {
  const button = $("cancel-button");
  button.disabled = true;
  try {
    state.live?.apply(await api.cancel(ride.rideId));
    clearAlert();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

function newRide() {
  state.live?.destroy();
  state.live = null;
  resetBooking();
  clearAlert();
  show("book");
  drawMarkers();
  if (state.map?.bounds) state.map.fit(state.map.bounds);
}

// --- push ------------------------------------------------------------------------------------------
function connectSocket() {
  state.socket?.stop();
  state.socket = new PushSocket({
    token: () => state.token,
    onStatus: setConnection,
    onUnauthorized: () => signOut(humanMessage({ code: "unauthorized" })),
    onOpen: () => {
      // The server is reachable again: an alert saying it is not would be stale, and so would a map
      // whose streets could not be fetched.
      if ($("alert").dataset.code === "network_error") clearAlert();
      state.map?.retry();
      // After a reconnect, ask for every version after the last one shown.
      state.resumes.clear();
      if (state.live && !state.live.settled) resume(state.live.id, state.live.version);
    },
    onMessage: (message) => {
      if (message.type === "ride.updated" && message.rideId === state.live?.id) state.live.apply(message.ride);
      else if (message.type === "ride.eta") state.live?.applyEta(message);
      else if (message.type === "error" && message.rideId === state.live?.id) showError(message);
    },
  });
  window.__acr.socket = state.socket;
  state.socket.connect();
}

window.addEventListener("offline", () => state.socket?.drop());
window.addEventListener("online", () => {
  if (state.socket && !state.socket.ws) state.socket.connect();
});

// --- account and history ---------------------------------------------------------------------------
async function refreshAccount() {
  try {
    const me = await api.me();
    $("account-name").textContent = me.name;
    const tier = $("account-tier");
    tier.textContent = me.tier;
    tier.dataset.tier = me.tier;
    $("account-points").textContent = `${me.points} pts`;
    $("account-detail").textContent = `${me.rideCount} ride${me.rideCount === 1 ? "" : "s"} · rating ${Number(me.rating).toFixed(1)}`;
    $("account").hidden = false;
  } catch (err) {
    showError(err);
  }
}

async function refreshHistory() {
  try {
    const { rides } = await api.rides(10);
    const list = $("past-rides");
    list.replaceChildren(
      ...rides.map((r) =>
        el(
          "li",
          { "data-testid": "past-ride", "data-status": r.status },
          el("div", { class: "past-top" }, el("span", { class: `badge s-${r.status.toLowerCase()}` }, STATUS_TEXT[r.status] ?? r.status), el("span", { class: "muted" }, dateTime(r.requestedAt))),
          el("div", { class: "past-route" }, `${r.pickup.label} → ${r.dropoff.label}`),
          el("div", { class: "muted" }, money(r.fare ?? r.quotedFare), r.pointsEarned ? ` · +${r.pointsEarned} pts` : ""),
        ),
      ),
    );
    $("history-empty").hidden = rides.length > 0;
    return rides;
  } catch (err) {
    showError(err);
    return null;
  }
}

// --- wiring ----------------------------------------------------------------------------------------
function init() {
  window.__acr = { state };
  setupFields();
  $("signup").addEventListener("submit", signUp);
  $("quote-button").addEventListener("click", requestQuote);
  $("confirm-button").addEventListener("click", confirmRide);
  $("requote-button").addEventListener("click", requestQuote);
  $("new-ride-button").addEventListener("click", newRide);
  $("signout-button").addEventListener("click", () => signOut(null));
  for (const button of document.querySelectorAll("[data-tap-target]")) {
    button.addEventListener("click", () => setTapTarget(button.dataset.tapTarget));
  }
  setTapTarget("pickup");
  if (state.token) enter();
  else show("signup");
}

init();
