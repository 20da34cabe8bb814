// The ride in progress: applies the pushed versions strictly in order (asking for a resume on a gap),
// the ETA pushes (car position, countdown), and renders the status, timeline, cancel button and receipt.

import { CANCELLABLE, HAPPY_PATH, STATUS_TEXT, STEP_TEXT, TERMINAL, clock, duration, el, km, money, time } from "./format.js";

export class LiveRide {
  constructor(root, { onCancel, onResume, onChange, onFinished }) {
    this.root = root;
    this.onCancel = onCancel;
    this.onResume = onResume;
    this.onChange = onChange;
    this.onFinished = onFinished;
    this.ride = null;
    this.steps = []; // {status, at, carId, version}
    this.versions = []; // every version applied, in order (tests check there is no gap)
    this.pending = new Map(); // version -> ride, waiting for the versions before it
    this.eta = null; // {phase, seconds, t0, lat, lon}
    this.car = null; // {lat, lon}
    this.finishedNotified = false;
    this.ticker = setInterval(() => this.#renderEta(), 1000);
    this.els = {
      status: root.querySelector("[data-testid=ride-status]"),
      eta: root.querySelector("[data-testid=eta]"),
      route: root.querySelector("[data-testid=ride-route]"),
      car: root.querySelector("[data-testid=ride-car]"),
      timeline: root.querySelector("[data-testid=timeline]"),
      cancel: root.querySelector("[data-testid=cancel-button]"),
      receipt: root.querySelector("[data-testid=receipt]"),
      again: root.querySelector("[data-testid=new-ride-button]"),
    };
    this.cancelHandler = () => this.onCancel(this.ride);
    this.els.cancel.addEventListener("click", this.cancelHandler);
  }

  get id() {
    return this.ride?.rideId ?? null;
  }

  get version() {
    return this.ride?.version ?? 0;
  }

  /** The ride is over and nothing more will change (points are known or cannot come). */
  get settled() {
    const r = this.ride;
    if (!r || !TERMINAL.has(r.status)) return false;
    return r.status !== "PAID" || r.pointsEarned != null;
  }

  /** Start from a ride read over REST (booking answer or a reload): its timeline seeds the steps. */
  start(ride) {
    this.ride = ride;
    this.versions = [ride.version];
    this.steps = (ride.timeline ?? []).map((t) => ({ ...t, version: null }));
    if (!this.steps.length) this.steps = [{ status: ride.status, at: ride.updatedAt, carId: ride.carId, version: ride.version }];
    this.steps[this.steps.length - 1].version = ride.version;
    this.#render();
  }

  /** A version of the ride (push, cancel answer or a re-read). */
  apply(ride) {
    if (!this.ride || ride.rideId !== this.ride.rideId || ride.version <= this.ride.version) return;
    this.pending.set(ride.version, ride);
    let applied = false;
    while (this.pending.has(this.ride.version + 1)) {
      const next = this.pending.get(this.ride.version + 1);
      this.pending.delete(next.version);
      this.#step(next);
      applied = true;
    }
    if (this.pending.size) this.onResume(this.ride.rideId, this.ride.version);
    if (applied) this.#render();
  }

  /** A ride.eta push: car position and the countdown (simulated seconds, shown as given). */
  applyEta(message) {
    if (message.rideId !== this.id || TERMINAL.has(this.ride.status) || this.ride.status === "COMPLETED") return;
    this.eta = { phase: message.phase, seconds: Number(message.etaSeconds), t0: performance.now() };
    this.car = { lat: message.lat, lon: message.lon };
    this.#renderEta();
    this.onChange();
  }

  markers() {
    const r = this.ride;
    if (!r) return [];
    const list = [
      { id: "pickup", kind: "pickup", lat: r.pickup.lat, lon: r.pickup.lon, label: "A" },
      { id: "dropoff", kind: "dropoff", lat: r.dropoff.lat, lon: r.dropoff.lon, label: "B" },
    ];
    if (this.car && !TERMINAL.has(r.status)) list.push({ id: "car", kind: "car", ...this.car, size: 8, highlight: true });
    return list;
  }

  destroy() {
    clearInterval(this.ticker);
    this.els.cancel.removeEventListener("click", this.cancelHandler);
  }

  #step(next) {
    const prev = this.ride;
    this.ride = next;
    this.versions.push(next.version);
    const newCar = next.status === "CAR_ASSIGNED" && next.carId !== prev.carId;
    if (next.status !== prev.status || newCar) {
      const entry = [...(next.timeline ?? [])].reverse().find((t) => t.status === next.status);
      this.steps.push({ status: next.status, at: entry?.at ?? next.updatedAt, carId: next.carId, version: next.version });
      if (next.status !== prev.status) this.eta = null;
    }
  }

  #render() {
    const r = this.ride;
    const { els } = this;
    els.status.textContent = STATUS_TEXT[r.status] ?? r.status;
    els.status.dataset.status = r.status;
    this.root.dataset.status = r.status;
    this.root.dataset.version = String(r.version);
    els.route.replaceChildren(
      el("span", { class: "leg" }, el("span", { class: "dot pickup" }), r.pickup.label),
      el("span", { class: "leg" }, el("span", { class: "dot dropoff" }), r.dropoff.label),
    );
    els.car.textContent = r.carId ? `Car ${r.carId}` : "";
    this.#renderTimeline();
    els.cancel.hidden = !CANCELLABLE.has(r.status);
    els.cancel.textContent = r.status === "CAR_ARRIVED" ? "Cancel ride (a fee applies)" : "Cancel ride";
    els.again.hidden = !TERMINAL.has(r.status);
    this.#renderReceipt();
    this.#renderEta();
    this.onChange();
    if (this.settled && !this.finishedNotified) {
      this.finishedNotified = true;
      this.onFinished(r);
    }
  }

  #renderTimeline() {
    const done = this.steps.map((s) =>
      el(
        "li",
        { class: `step done s-${s.status.toLowerCase()}`, "data-testid": "timeline-step", "data-status": s.status, "data-version": s.version ?? "" },
        el("span", { class: "step-dot", "aria-hidden": "true" }),
        el("span", { class: "step-name" }, STEP_TEXT[s.status] ?? s.status),
        el("time", { class: "step-time", datetime: s.at ?? "" }, time(s.at)),
      ),
    );
    const last = this.ride.status;
    const index = HAPPY_PATH.indexOf(last);
    const upcoming = TERMINAL.has(last) || index < 0 ? [] : HAPPY_PATH.slice(index + 1);
    const todo = upcoming.map((status) =>
      el(
        "li",
        { class: "step upcoming", "data-testid": "timeline-upcoming", "data-status": status },
        el("span", { class: "step-dot", "aria-hidden": "true" }),
        el("span", { class: "step-name" }, STEP_TEXT[status]),
      ),
    );
    this.els.timeline.replaceChildren(...done, ...todo);
  }

  #renderEta() {
    const r = this.ride;
    const node = this.els.eta;
    if (!r) return;
    let seconds = null;
    let phase = null;
    if (this.eta) {
      seconds = this.eta.seconds - (performance.now() - this.eta.t0) / 1000;
      phase = this.eta.phase;
    } else if (r.status === "CAR_ASSIGNED" && r.pickupEtaSeconds != null) {
      seconds = r.pickupEtaSeconds;
      phase = "TO_PICKUP";
    } else if (r.status === "IN_PROGRESS" && r.arrivalEtaSeconds != null) {
      seconds = r.arrivalEtaSeconds;
      phase = "TO_DESTINATION";
    }
    if (r.status === "CAR_ARRIVED") {
      node.textContent = "Your car is waiting at the pickup.";
    } else if (seconds == null || TERMINAL.has(r.status) || r.status === "COMPLETED" || r.status === "REQUESTED") {
      node.textContent = r.status === "REQUESTED" ? "Finding the nearest car…" : "";
    } else {
      const what = phase === "TO_PICKUP" ? "Your car arrives in" : "You arrive in";
      node.textContent = `${what} ${clock(seconds)}`;
    }
    node.dataset.phase = phase ?? "";
  }

  #renderReceipt() {
    const r = this.ride;
    const box = this.els.receipt;
    if (!TERMINAL.has(r.status)) {
      box.hidden = true;
      return;
    }
    const rows = [];
    const row = (label, value, testid) =>
      rows.push(el("div", { class: "row" }, el("dt", {}, label), el("dd", { "data-testid": testid }, value)));
    if (r.status === "CANCELLED") {
      const reason = {
        RIDER_CANCELLED: "Cancelled by you",
        OPERATOR_CANCELLED: "Cancelled by an operator",
        NO_CAR_AVAILABLE: "No car was available",
        DISPATCH_TIMEOUT: "No car could be assigned in time",
        CAR_NOT_ARRIVED: "The car did not arrive",
        TRIP_NOT_STARTED: "The trip did not start",
        TRIP_INTERRUPTED: "The trip was interrupted",
      };
      row("Reason", reason[r.cancellation?.reason] ?? "Cancelled", "receipt-reason");
      row("Cancellation fee", r.cancellation?.fee ? money(r.cancellation.fee) : "None", "receipt-fee");
    } else {
      row("Fare", money(r.fare ?? r.quotedFare), "receipt-fare");
      row("Distance", km(r.distanceMeters), "receipt-distance");
      row("Duration", duration(r.durationSeconds), "receipt-duration");
    }
    if (r.payment) {
      const ok = r.payment.status === "SUCCEEDED";
      row("Payment", `${ok ? "Paid" : "Failed"} · ${money(r.payment.amount)}`, "receipt-payment");
    } else if (r.status === "PAYMENT_FAILED") {
      row("Payment", "Failed", "receipt-payment");
    }
    if (r.status === "PAID") {
      row("Points earned", r.pointsEarned == null ? "Counting…" : `+${r.pointsEarned}`, "receipt-points");
    }
    box.replaceChildren(el("h3", {}, "Receipt"), el("dl", {}, ...rows));
    box.hidden = false;
  }
}
