// The ops dashboard: fleet on the map, rides in flight, messaging counters and outbox ages, DLQs, one
// ride's event flow, and the open chaos windows (when the stack has chaos controls).

import { ApiError, request } from "../app/api.js";
import { el, time } from "../app/format.js";
import { CAR_COLORS, CityMap } from "../lib/map.js";

const OPS_TOKEN = "acr.opsToken";
const MAP_TOKEN = "acr.opsMapToken"; // a rider token, only to read the street map (the map API is a rider API)
const FLEET_MS = 1000;
const SLOW_MS = 2000;
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(OPS_TOKEN),
  map: null,
  fleet: [],
  rides: [],
  selected: null,
  timers: [],
  running: false,
  chaos: document.body.dataset.chaos === "on", // the BFF marks the page when it has chaos controls
};
window.__dash = state;

// --- calls -----------------------------------------------------------------------------------------
async function ops(method, path) {
  try {
    const headers = state.token ? { "X-Ops-Token": state.token } : {}; // no token: nothing to send
    return await request(method, path, { headers });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      askToken("That ops token was refused. Please enter the stack's ACR_OPS_TOKEN.");
    }
    throw err;
  }
}

async function mapToken(renew = false) {
  let token = renew ? null : sessionStorage.getItem(MAP_TOKEN);
  if (!token) {
    ({ token } = await request("POST", "/api/v1/riders", { body: { name: "Ops dashboard" } }));
    sessionStorage.setItem(MAP_TOKEN, token);
  }
  return token;
}

async function loadStreets(bbox, zoom, signal) {
  const path = `/api/v1/map?${new URLSearchParams({ bbox, zoom })}`;
  const get = async (token) => request("GET", path, { headers: { Authorization: `Bearer ${token}` }, signal });
  try {
    return await get(await mapToken());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return get(await mapToken(true));
    throw err;
  }
}

// --- alerts ----------------------------------------------------------------------------------------
function showAlert(text, transient = false) {
  const box = $("alert");
  box.dataset.transient = String(transient);
  box.textContent = text;
  box.className = "alert error";
  box.hidden = false;
}

function clearAlert() {
  $("alert").hidden = true;
}

function describe(err) {
  if (!(err instanceof ApiError)) return "Something went wrong.";
  if (err.isNetwork) return "The BFF does not answer. Retrying…";
  if (err.code === "dependency_unavailable") return "A service is unavailable. Retrying…";
  if (err.code === "rate_limited") return "Rate limited. Retrying…";
  return err.message || err.code;
}

// --- token -----------------------------------------------------------------------------------------
function askToken(message) {
  stop();
  state.token = null;
  sessionStorage.removeItem(OPS_TOKEN);
  $("dash").hidden = true;
  $("forget-token").hidden = true;
  $("token-form").hidden = false;
  document.body.dataset.screen = "token";
  $("ops-token").focus();
  if (message) showAlert(message);
}

function submitToken(event) {
  event.preventDefault();
  const value = $("ops-token").value.trim();
  if (!value) {
    showAlert("Please enter the stack's ACR_OPS_TOKEN.");
    return;
  }
  state.token = value;
  sessionStorage.setItem(OPS_TOKEN, value);
  clearAlert();
  open();
}

function open() {
  $("token-form").hidden = true;
  $("dash").hidden = false;
  $("forget-token").hidden = false;
  document.body.dataset.screen = "dashboard";
  if (!state.map) {
    state.map = new CityMap($("map"), { loadStreets, onError: (err) => showAlert(describe(err)) });
    state.map.init().catch((err) => showAlert(describe(err)));
  }
  start();
}

// --- polling ---------------------------------------------------------------------------------------
function every(ms, task) {
  const run = async () => {
    if (!state.running) return;
    try {
      await task();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showAlert(describe(err), true);
    }
    if (state.running) state.timers.push(setTimeout(run, ms));
  };
  run();
}

function start() {
  if (state.running) return;
  state.running = true;
  every(FLEET_MS, pollFleet);
  every(SLOW_MS, pollStats);
  every(SLOW_MS, pollRides);
  every(SLOW_MS, pollEvents);
  if (state.chaos) every(SLOW_MS, pollChaos); // the controls exist only in an embedded stack with ACR_CHAOS on
}

function stop() {
  state.running = false;
  state.timers.forEach(clearTimeout);
  state.timers = [];
}

// --- fleet -----------------------------------------------------------------------------------------
async function pollFleet() {
  const { cars } = await ops("GET", "/ops/fleet");
  state.fleet = cars;
  state.fleetAt = Date.now();
  const selectedCar = state.rides.find((r) => r.rideId === state.selected)?.carId;
  state.map?.setMarkers(
    cars.map((c) => ({
      id: c.carId,
      kind: "car",
      lat: c.lat,
      lon: c.lon,
      color: CAR_COLORS[c.state] ?? "#888",
      size: c.carId === selectedCar ? 8 : c.rideId ? 6 : 4.5,
      highlight: c.carId === selectedCar,
    })),
  );
  const counts = {};
  for (const c of cars) counts[c.state] = (counts[c.state] ?? 0) + 1;
  $("legend").replaceChildren(
    ...Object.entries(CAR_COLORS).map(([name, color]) =>
      el("span", { "data-testid": `legend-${name}` }, el("i", { class: "swatch", style: `background:${color}` }), `${label(name)} ${counts[name] ?? 0}`),
    ),
  );
  $("poll-state").textContent = `fleet ${cars.length} cars · ${new Date().toLocaleTimeString()}`;
  renderRides();
  clearAlertIfFleet();
}

function clearAlertIfFleet() {
  if (!$("alert").hidden && $("alert").dataset.transient === "true") clearAlert();
}

function label(name) {
  return name.charAt(0) + name.slice(1).toLowerCase().replaceAll("_", " ");
}

// --- stats and DLQs --------------------------------------------------------------------------------
const COUNTERS = [
  ["published", "Published"],
  ["consumed", "Consumed"],
  ["duplicatesDiscarded", "Duplicates discarded"],
  ["staleDropped", "Stale dropped"],
  ["parked", "Parked"],
  ["deadLettered", "Dead-lettered"],
  ["relayLagMs", "Relay lag (ms)"],
  ["projectionLagMs", "Projection lag, last (ms)"],
  ["projectionP50LagMs", "Projection lag p50 (ms)"],
  ["projectionP99LagMs", "Projection lag p99 (ms)"],
];

async function pollStats() {
  const [stats, dlq] = await Promise.all([ops("GET", "/ops/stats"), ops("GET", "/ops/dlq").catch(() => null)]);
  const totals = stats?.totals ?? {};
  $("counters").replaceChildren(
    ...COUNTERS.filter(([key]) => key in totals).map(([key, name]) =>
      el(
        "div",
        { class: "counter", "data-testid": `counter-${key}`, "data-value": totals[key] },
        el("div", { class: "value" }, formatNumber(totals[key])),
        el("div", { class: "label" }, name),
      ),
    ),
  );
  renderOutbox(stats?.services ?? {});
  const resent = Object.entries(totals.resent ?? {});
  $("resent").textContent = resent.length ? `Resent: ${resent.map(([why, n]) => `${why} ${n}`).join(" · ")}` : "Resent: none";
  const depths = new Map(Object.entries(totals.dlq ?? {}));
  for (const q of dlq?.queues ?? []) depths.set(q.queue, q.depth);
  $("dlqs").replaceChildren(
    ...[...depths.entries()].map(([queue, depth]) => {
      const button = el("button", { type: "button", class: "secondary small", "data-testid": "redrive", disabled: !depth }, "Redrive");
      button.addEventListener("click", () => redrive(queue, button));
      return el("tr", { "data-testid": "dlq-row", "data-queue": queue }, el("td", {}, queue.replace(/^acr-/, "")), el("td", {}, String(depth)), el("td", {}, button));
    }),
  );
}

// The age of each service's oldest pending outbox row, once the services report it.
function renderOutbox(services) {
  const ages = Object.entries(services).filter(([, counters]) => counters && "oldestPendingMs" in counters);
  $("outbox-table").hidden = ages.length === 0;
  $("outbox").replaceChildren(
    ...ages.map(([service, { oldestPendingMs: ms }]) =>
      el(
        "tr",
        { "data-testid": "outbox-row", "data-service": service, "data-value": ms ?? "" },
        el("td", {}, service),
        el("td", { class: ms ? "" : "muted" }, ms == null ? "none pending" : duration(ms)),
      ),
    ),
  );
}

function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

function formatNumber(v) {
  if (typeof v !== "number") return String(v ?? "—");
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

async function redrive(queue, button) {
  button.disabled = true;
  try {
    await ops("POST", `/ops/dlq/${encodeURIComponent(queue)}/redrive`);
    await pollStats();
  } catch (err) {
    showAlert(describe(err));
  }
}

// --- rides and events ------------------------------------------------------------------------------
async function pollRides() {
  const { rides } = await ops("GET", "/ops/rides?active=true");
  state.rides = rides ?? [];
  renderRides();
}

function renderRides() {
  const cars = new Map(state.fleet.map((c) => [c.carId, c]));
  $("rides-count").textContent = state.rides.length ? `(${state.rides.length})` : "";
  $("rides-empty").hidden = state.rides.length > 0;
  $("rides").replaceChildren(
    ...state.rides.map((r) => {
      const car = r.carId ? cars.get(r.carId) : null;
      const row = el(
        "tr",
        {
          class: `clickable${r.rideId === state.selected ? " selected" : ""}`,
          tabindex: "0",
          "data-testid": "ride-row",
          "data-ride-id": r.rideId,
          "data-car-id": r.carId ?? "",
          "data-car-lat": car?.lat ?? "",
          "data-car-lon": car?.lon ?? "",
        },
        el("td", { title: r.rideId }, r.rideId.slice(0, 13) + "…"),
        el("td", {}, r.status),
        el("td", {}, r.carId ?? "—"),
        el("td", { class: "muted" }, car ? `${car.lat.toFixed(5)}, ${car.lon.toFixed(5)}` : "—"),
      );
      const select = () => selectRide(r.rideId);
      row.addEventListener("click", select);
      row.addEventListener("keydown", (e) => e.key === "Enter" && select());
      return row;
    }),
  );
}

function selectRide(rideId) {
  state.selected = rideId;
  $("events-card").hidden = false;
  $("events-ride").textContent = rideId;
  renderRides();
  pollEvents().catch((err) => showAlert(describe(err)));
}

async function pollEvents() {
  const rideId = state.selected;
  if (!rideId) return;
  const { events } = await ops("GET", `/ops/rides/${encodeURIComponent(rideId)}/events`);
  if (rideId !== state.selected) return;
  $("events").replaceChildren(
    ...events.map((e) =>
      el(
        "li",
        { "data-testid": "event", "data-type": e.type },
        el("span", { class: "ev-n" }, `#${e.eventcount ?? 1}`),
        el("span", { class: "ev-type" }, shortType(e.type)),
        el("span", { class: "ev-meta" }, `${(e.source ?? "").replace(/^acr\./, "")} · ${time(e.time)}${e.status ? ` · ${e.status}` : ""}`),
      ),
    ),
  );
  const traceId = /^00-([0-9a-f]{32})-/.exec(events[0]?.traceparent ?? "")?.[1];
  if (traceId) await drawTrace(rideId, traceId);
}

// The ride's trace as a waterfall: one row per span of the trace (relay sends that only link to it are
// left out), its bar placed on the trace's time axis.
async function drawTrace(rideId, traceId) {
  const { spans } = await ops("GET", `/ops/traces/${traceId}`);
  if (rideId !== state.selected) return;
  const own = spans.filter((s) => s.traceId === traceId);
  const start = Math.min(...own.map((s) => s.startUs));
  const total = Math.max(1, Math.max(...own.map((s) => s.endUs)) - start);
  $("trace-id").textContent = `${traceId} · ${own.length} spans · ${Math.round(total / 1000)} ms`;
  $("waterfall").replaceChildren(
    ...own.map((s) => {
      const bar = el("span", { class: "wf-bar" });
      bar.style.marginLeft = `${(100 * (s.startUs - start)) / total}%`;
      bar.style.width = `${Math.max(0.3, (100 * (s.endUs - s.startUs)) / total)}%`;
      return el(
        "li",
        { "data-testid": "span", "data-service": s.service },
        el("span", { class: "wf-name" }, `${s.service} · ${s.name}`),
        el("span", { class: "wf-track" }, bar),
      );
    }),
  );
}

function shortType(type) {
  return String(type ?? "").split(".").pop();
}

// --- chaos windows ---------------------------------------------------------------------------------
async function pollChaos() {
  const windows = await ops("GET", "/ops/chaos");
  const rows = [
    ...windows.outages.map((o) =>
      chaosRow(o.outageId, "outage", o.target, o.latencyMs ? `${o.mode} +${o.latencyMs} ms` : o.mode, o.until, didSoFar(o.counts)),
    ),
    ...windows.faults.map((f) => chaosRow(f.faultId, "fault", f.service, `${f.fault} at ${f.rate}`, f.until, "")),
  ];
  $("chaos-card").hidden = false;
  $("chaos-count").textContent = rows.length ? `(${rows.length})` : "";
  $("chaos").replaceChildren(...rows);
  $("chaos-empty").hidden = rows.length > 0;
}

function chaosRow(id, kind, target, what, until, soFar) {
  const left = Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000));
  return el(
    "tr",
    { "data-testid": "chaos-row", "data-kind": kind, "data-id": id ?? "", "data-target": target },
    el("td", {}, `${kind} · ${target}`),
    el("td", {}, what, ...(soFar ? [el("div", { class: "muted" }, soFar)] : [])),
    el("td", { title: until }, Number.isNaN(left) ? "—" : `${left} s`),
  );
}

function didSoFar(counts) {
  const done = Object.entries(counts ?? {}).filter(([, n]) => n > 0);
  return done.length ? done.map(([what, n]) => `${what} ${n}`).join(" · ") : "nothing yet";
}

// --- wiring ----------------------------------------------------------------------------------------
$("token-form").addEventListener("submit", submitToken);
$("forget-token").addEventListener("click", () => askToken(null));
if (state.token) open();
else askToken(null);
