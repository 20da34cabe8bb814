// The BFF's rider API (docs/api.md), as the app uses it. Every failure is an ApiError with the API's code.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

/** A fresh random id (Idempotency-Key). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A W3C trace context for one trip, from its quote to its booking: every service the trip touches, the
 * address-finder pricing the quote included, then reports its spans in one trace (docs/architecture.md). */
export function newTraceparent() {
  const hex = (bytes) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
  return `00-${hex(16)}-${hex(8)}-01`;
}

const traced = (traceparent) => (traceparent ? { traceparent } : {});

/** The header a write answers with and a read sends back, so the read shows the write on any BFF replica. */
export const CONSISTENCY_HEADER = "ACR-Consistency-Token";

export async function request(method, path, { body, headers = {}, signal, onResponse } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { Accept: "application/json", ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal,
    });
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", String(err?.message ?? err));
  }
  onResponse?.(response);
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = payload?.error ?? {};
    const fallback = response.status >= 500 ? "dependency_unavailable" : "bad_request";
    throw new ApiError(response.status, error.code ?? fallback, error.message ?? response.statusText, response.headers.get("Retry-After"));
  }
  return payload;
}

/** The rider API bound to a token source; `onUnauthorized` runs on any 401. */
export function riderApi({ token, onUnauthorized }) {
  let consistency = null; // the token of this rider's last write
  const remember = (response) => {
    consistency = response.headers.get(CONSISTENCY_HEADER) ?? consistency;
  };
  const call = async (method, path, options = {}) => {
    const t = token();
    const headers = {
      ...(options.headers ?? {}),
      ...(t ? { Authorization: `Bearer ${t}` } : {}),
      ...(consistency ? { [CONSISTENCY_HEADER]: consistency } : {}),
    };
    try {
      return await request(method, path, { ...options, headers, onResponse: remember });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onUnauthorized(err);
      throw err;
    }
  };
  const q = (params) => new URLSearchParams(params).toString();
  return {
    signUp: (name) => request("POST", "/api/v1/riders", { body: { name } }),
    me: () => call("GET", "/api/v1/riders/me"),
    autocomplete: (text, limit = 6, signal) => call("GET", `/api/v1/addresses/autocomplete?${q({ q: text, limit })}`, { signal }),
    reverse: (lat, lon) => call("GET", `/api/v1/addresses/reverse?${q({ lat, lon })}`),
    map: (bbox, zoom, signal) => call("GET", `/api/v1/map?${q({ bbox, zoom })}`, { signal }),
    quote: (pickup, dropoff, traceparent) =>
      call("POST", "/api/v1/quotes", { body: { pickup, dropoff }, headers: traced(traceparent) }),
    book: (quoteId, key, traceparent) =>
      call("POST", "/api/v1/rides", { body: { quoteId }, headers: { "Idempotency-Key": key, ...traced(traceparent) } }),
    ride: (rideId) => call("GET", `/api/v1/rides/${encodeURIComponent(rideId)}`),
    rides: (limit = 10) => call("GET", `/api/v1/rides?${q({ limit })}`),
    cancel: (rideId) => call("POST", `/api/v1/rides/${encodeURIComponent(rideId)}/cancel`),
  };
}
