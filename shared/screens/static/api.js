// The store's device API from a page: the device token travels in its HttpOnly cookie; every
// write sends the CSRF token of the page's other cookie. Errors come back as the API's
// {"error": {"code", "message", "details"}}, thrown as ApiError.

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.details = error.details || {};
  }
}

function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("aisle_csrf="));
  return found ? decodeURIComponent(found.slice("aisle_csrf=".length)) : "";
}

export async function call(method, path, body, { key } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) throw new ApiError(response.status, data.error || {});
  return data;
}

// Minor units to the currency's usual text (CNY 2 decimals; JPY 0; KWD 3).
const DECIMALS = { JPY: 0, KRW: 0, KWD: 3, BHD: 3 };
export function money(amount, currency) {
  const places = DECIMALS[currency] ?? 2;
  const sign = amount < 0 ? "-" : "";
  const whole = Math.abs(amount);
  if (!places) return `${sign}${whole}`;
  const text = String(whole).padStart(places + 1, "0");
  return `${sign}${text.slice(0, -places)}.${text.slice(-places)}`;
}
