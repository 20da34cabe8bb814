// Human messages for every API error code the rider app can meet (docs/api.md, "Errors").

const MESSAGES = {
  no_car_available: "Sorry, no car can reach your pickup right now. Please try again in a minute.",
  quote_expired: "This price has expired. Please get a new quote.",
  quote_already_used: "This quote was already used to book a ride.",
  quote_not_found: "We could not find that quote. Please get a new one.",
  ride_not_found: "We could not find that ride.",
  address_not_found: "We could not find that address. Try another one.",
  not_cancellable: "This ride can no longer be cancelled: the trip has started or ended.",
  outside_service_area: "That place is outside our service area. Please pick a point in the city.",
  validation_error: "Something in the request was not valid. Please check your input.",
  rate_limited: "Too many requests. Please wait a moment and try again.",
  dependency_unavailable: "Part of our service is temporarily unavailable. Please try again shortly.",
  unauthorized: "Your session has expired. Please sign up again.",
  idempotency_key_conflict: "This booking was already sent with different details. Please get a new quote.",
  idempotency_key_required: "The booking could not be sent. Please try again.",
  bad_request: "The request could not be understood. Please try again.",
  not_found: "That was not found.",
  network_error: "We cannot reach the server. Check your connection and try again.",
};

const FALLBACK = "Something went wrong. Please try again.";

/** The text to show for an ApiError (or anything thrown). */
export function humanMessage(error) {
  const code = error?.code;
  if (code === "rate_limited" && error.retryAfter) {
    const s = Math.max(1, Math.ceil(Number(error.retryAfter)));
    return `Too many requests. Please try again in ${s} second${s === 1 ? "" : "s"}.`;
  }
  return MESSAGES[code] ?? FALLBACK;
}

export const ERROR_MESSAGES = MESSAGES;
