// The public REST API of this origin, and the session kept in sessionStorage
// (never in URLs or localStorage: it ends with the tab).

const SESSION_KEY = "ec-session";

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "";
    this.details = body?.details || {};
    this.retryAfter = retryAfter;
  }

  // What a person should read: the API's own message, made friendlier where it helps.
  get human() {
    switch (this.code) {
      case "RATE_LIMITED":
        return `Too many requests: try again in ${this.retryAfter ?? "a few"} s.`;
      case "FORBIDDEN":
        return "Not allowed: " + this.message;
      case "PAYMENT_DECLINED":
        return "Your card was declined: " + this.message + ". Try another card.";
      case "SERVICE_UNAVAILABLE":
        return `The service is busy; try again${this.retryAfter ? ` in ${this.retryAfter} s` : " shortly"}.`;
      case "TIMEOUT":
        return "That took too long; please try again.";
      case "INTERNAL_ERROR":
        return `Something went wrong on our side (request ${this.details.request_id || "?"}).`;
      default:
        return this.message;
    }
  }
}

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null;
  } catch {
    return null;
  }
}

let session = readSession();

function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

// Who is logged in, as the id token says (the server decides what they may do).
export function currentUser() {
  if (!session) return null;
  const claims = claimsOf(session.id_token);
  return {
    email: claims.email || session.email,
    groups: claims["cognito:groups"] || [],
    sellerId: claims["custom:seller_id"] || "",
    token: session.id_token,
  };
}

export function hasGroup(group) {
  return currentUser()?.groups.includes(group) ?? false;
}

export function logout() {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
}

function keep(tokens, email) {
  // A refresh may answer without a new refresh token: keep the one we have.
  session = { ...session, ...tokens, refresh_token: tokens.refresh_token || session?.refresh_token, email };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

// One refresh at a time, shared by the requests that found the token expired.
let refreshing = null;

async function refreshed() {
  if (!session?.refresh_token) return false;
  refreshing ??= request("POST", "/auth/refresh", { body: { refresh_token: session.refresh_token }, retry: false })
    .then((tokens) => {
      keep(tokens, session.email);
      return true;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export async function request(method, path, { body, query, key, retry = true } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session) headers.Authorization = `Bearer ${session.id_token}`;
  if (key) headers["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { code: "SERVICE_UNAVAILABLE", message: "the shop cannot be reached" });
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  // An expired token is renewed once with the refresh token, then the request repeated.
  const renewable = retry && session && !path.startsWith("/auth/");
  if (response.status === 401 && renewable && (await refreshed())) {
    return request(method, path, { body, query, key, retry: false });
  }
  if (!response.ok) {
    const retryAfter = response.headers.get("Retry-After");
    throw new ApiError(response.status, data, retryAfter === null ? undefined : Number(retryAfter));
  }
  return data;
}

export const get = (path, query) => request("GET", path, { query });
export const post = (path, body, key) => request("POST", path, { body, key });
export const put = (path, body) => request("PUT", path, { body });
export const del = (path) => request("DELETE", path);

export function newKey() {
  return crypto.randomUUID();
}

export async function login(email, password) {
  const tokens = await post("/auth/login", { email, password });
  session = null;
  keep(tokens, email);
  return currentUser();
}
