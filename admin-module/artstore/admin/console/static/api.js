// Sign-in (OAuth 2.0 authorization code + PKCE, RFC 7636) and calls to the three APIs.
// Tokens live in sessionStorage (this tab only); the access token is refreshed quietly
// a minute before it expires; sign-out revokes the refresh token.

export const CONSOLE_BASE = new URL(".", location.href);          // …/console/
export const ADMIN_BASE = new URL("..", CONSOLE_BASE);             // the admin's root
const REDIRECT_URI = new URL("callback", CONSOLE_BASE).href;
const TOKENS = "artstore.console.tokens";
const PENDING = "artstore.console.pkce";

export class ApiError extends Error {
  constructor(message, status = 0, code = "", details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details; // the envelope's details, when it had any
  }
}

let config = null;
let refreshTimer = null;

export async function loadConfig() {
  const r = await fetch(new URL("config.json", CONSOLE_BASE), { cache: "no-store" });
  if (!r.ok) throw new ApiError(`the console's configuration did not load (HTTP ${r.status})`, r.status);
  config = await r.json();
  return config;
}

export function serviceBase(service) {
  if (service === "admin") return ADMIN_BASE.href.replace(/\/$/, "");
  if (service === "ingester") return config.ingester_url;
  if (service === "query") return config.query_url;
  throw new Error(`unknown service ${service}`);
}

function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

export function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  } catch {
    return null;
  }
}

function keep(answer) {
  const t = {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token || tokens()?.refresh_token || null,
    expires_at: Date.now() + 1000 * (answer.expires_in || 900),
    scope: answer.scope || "",
  };
  sessionStorage.setItem(TOKENS, JSON.stringify(t));
  schedule();
  return t;
}

function schedule() {
  clearTimeout(refreshTimer);
  const t = tokens();
  if (!t || !t.refresh_token) return;
  // A minute before expiry (or at 80% of a short lifetime), never sooner than 5 s from now.
  const left = t.expires_at - Date.now();
  const wait = Math.max(5000, Math.min(left - 60000, left * 0.8));
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}

/** Sends the browser to the admin's sign-in page (the authorization endpoint). */
export async function signIn(returnTo = "#/files") {
  const verifier = randomString(48);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const url = new URL("api/v1/auth/authorize", ADMIN_BASE);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: REDIRECT_URI,
    code_challenge: b64url(digest),
    code_challenge_method: "S256",
    state,
  }).toString();
  location.assign(url.href);
}

async function tokenRequest(form) {
  let r;
  try {
    r = await fetch(new URL("api/v1/auth/token", ADMIN_BASE), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  } catch (e) {
    throw new ApiError(`the admin module did not answer (${e.message})`);
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const message = body.error_description || body.error?.message || body.error || `HTTP ${r.status}`;
    throw new ApiError(String(message), r.status, typeof body.error === "string" ? body.error : "");
  }
  return body;
}

/** On /console/callback: exchanges the code; returns the hash route to show, or null. */
export async function completeSignIn() {
  if (!location.pathname.endsWith("/callback")) return null;
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", CONSOLE_BASE.href);
  if (params.get("error")) {
    throw new ApiError(`sign-in refused: ${params.get("error_description") || params.get("error")}`);
  }
  if (!pending || !params.get("code") || params.get("state") !== pending.state) {
    throw new ApiError("sign-in answer does not match this tab's request: sign in again");
  }
  keep(
    await tokenRequest({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: REDIRECT_URI,
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  );
  return pending.returnTo || "#/files";
}

let refreshing = null;
export async function refresh() {
  const t = tokens();
  if (!t || !t.refresh_token) throw new ApiError("signed out", 401);
  refreshing ??= tokenRequest({
    grant_type: "refresh_token",
    refresh_token: t.refresh_token,
    client_id: config.client_id,
  })
    .then(keep)
    .finally(() => (refreshing = null));
  return refreshing;
}

export async function signOut() {
  const t = tokens();
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(TOKENS);
  for (const token of [t?.refresh_token, t?.access_token]) {
    if (!token) continue;
    await fetch(new URL("api/v1/auth/revoke", ADMIN_BASE), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, client_id: config.client_id }),
    }).catch(() => {});
  }
}

export function resume() {
  schedule();
}

/** A fresh access token (refreshed first when it is about to expire). */
export async function accessToken() {
  let t = tokens();
  if (!t) throw new ApiError("signed out", 401);
  if (t.expires_at - Date.now() < 30000 && t.refresh_token) t = await refresh();
  return t.access_token;
}

/** One API call; the error envelope's message becomes the ApiError's message. */
export async function api(service, method, path, { json, query, raw = false } = {}) {
  const url = new URL(serviceBase(service) + path);
  if (query) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const send = async () => {
    const headers = { Authorization: `Bearer ${await accessToken()}` };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await fetch(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
    } catch (e) {
      throw new ApiError(`the ${service} did not answer (${e.message})`);
    }
  };
  let r = await send();
  if (r.status === 401 && tokens()?.refresh_token) {
    await refresh();
    r = await send();
  }
  if (raw && r.ok) return r;
  if (!r.ok) {
    const body = await r.json().catch(() => null);
    const err = body && body.error && typeof body.error === "object" ? body.error : null;
    throw new ApiError(err?.message || `${service} answered HTTP ${r.status}`, r.status, err?.code || "",
      err?.details && typeof err.details === "object" ? err.details : null);
  }
  if (r.status === 204) return null;
  const type = r.headers.get("content-type") || "";
  return type.includes("json") ? r.json() : r;
}
