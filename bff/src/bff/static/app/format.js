// Small formatting helpers (shared by the rider app's views).

export const STATUS_TEXT = {
  REQUESTED: "Looking for a car",
  CAR_ASSIGNED: "Car on its way",
  CAR_ARRIVED: "Your car is here",
  IN_PROGRESS: "On the way",
  COMPLETED: "Arrived — paying",
  PAID: "Paid — thank you!",
  CANCELLED: "Cancelled",
  PAYMENT_FAILED: "Payment failed",
};

export const STEP_TEXT = {
  REQUESTED: "Requested",
  CAR_ASSIGNED: "Car assigned",
  CAR_ARRIVED: "Car arrived",
  IN_PROGRESS: "Trip started",
  COMPLETED: "Trip completed",
  PAID: "Paid",
  CANCELLED: "Cancelled",
  PAYMENT_FAILED: "Payment failed",
};

export const HAPPY_PATH = ["REQUESTED", "CAR_ASSIGNED", "CAR_ARRIVED", "IN_PROGRESS", "COMPLETED", "PAID"];
export const TERMINAL = new Set(["PAID", "CANCELLED", "PAYMENT_FAILED"]);
export const CANCELLABLE = new Set(["REQUESTED", "CAR_ASSIGNED", "CAR_ARRIVED"]);

export function money(m) {
  return m ? `${m.amount} ${m.currency}` : "—";
}

export function minutes(seconds) {
  return Math.max(1, Math.round(Number(seconds) / 60));
}

/** 75 -> "1:15"; 3700 -> "1:01:40". */
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

/** 353 -> "5 min 53 s". */
export function duration(seconds) {
  if (seconds == null) return "—";
  const s = Math.max(0, Math.round(Number(seconds)));
  const m = Math.floor(s / 60);
  return m ? `${m} min ${s % 60} s` : `${s} s`;
}

export function km(meters) {
  return meters == null ? "—" : `${(Number(meters) / 1000).toFixed(1)} km`;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function quoteText(quote) {
  const pickup = minutes(quote.pickupEtaSeconds);
  const arrive = minutes(Number(quote.pickupEtaSeconds) + Number(quote.tripDurationSeconds));
  return `Your car arrives in ${pickup} min, you arrive in ${arrive} min — ${money(quote.fare)}. Proceed?`;
}

/** Build an element: el("p", {class: "x", "data-testid": "y"}, "text", child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}
