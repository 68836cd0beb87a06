/*
 * The one place that talks to the server. Every answer is JSON {"success": true, …} or an
 * ApiError; the two snapshots the dashboard polls are conditional GETs, so an unchanged
 * snapshot costs a 304 and the view keeps what it shows.
 */

/** A failed request; status 0 means no usable answer (network down, not JSON, …). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/**
 * loginPath: where Django sends an expired session, so a redirect there reads as a 401
 *   (fetch follows redirects and would otherwise hand back the login page's HTML).
 * fetch, clock: injected by tests; the browser's own by default.
 */
export function createApi({ loginPath = null, fetch = globalThis.fetch, clock = Date } = {}) {
  let serverOffsetMs = 0;
  const snapshots = new Map(); // url → {tag, body}: the last 200 answer of a conditional GET

  function isLoginRedirect(response) {
    if (!loginPath || !response.redirected || !response.url) return false;
    return new URL(response.url).pathname === loginPath;
  }

  // "Last seen 3 s ago" compares server times: measure against the server's clock, not a
  // possibly skewed local one.
  function rememberServerClock(response) {
    const header = response.headers.get("Date");
    const serverMs = header ? Date.parse(header) : NaN;
    if (!Number.isNaN(serverMs)) serverOffsetMs = serverMs - clock.now();
  }

  async function request(url, { method = "GET", headers = {}, conditional = false } = {}) {
    const cached = conditional ? snapshots.get(url) : null;
    const sent = { Accept: "application/json", ...headers };
    if (cached) sent["If-None-Match"] = cached.tag;
    let response;
    try {
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: sent,
        cache: "no-store" // freshness is the ETag's job, not the HTTP cache's
      });
    } catch {
      throw new ApiError(0, "The server could not be reached.");
    }
    if (isLoginRedirect(response)) throw new ApiError(401, "Your session has expired.");
    rememberServerClock(response);
    if (response.status === 304 && cached) return { body: cached.body, changed: false };

    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    const serverMessage = body && typeof body.error === "string" ? body.error : "";
    if (!response.ok) {
      throw new ApiError(response.status, serverMessage || `Request failed (HTTP ${response.status}).`);
    }
    if (!body || body.success !== true) {
      throw new ApiError(0, serverMessage || "Unexpected answer from the server.");
    }
    if (!conditional) return body;
    const tag = response.headers.get("ETag");
    if (tag) snapshots.set(url, { tag, body });
    else snapshots.delete(url);
    return { body, changed: true };
  }

  return {
    /** Resolves with the parsed body. */
    get: (url) => request(url),
    /** Conditional GET: resolves {body, changed}; a 304 gives the last body, changed=false. */
    getSnapshot: (url) => request(url, { conditional: true }),
    post: (url, csrfToken) => request(url, { method: "POST", headers: { "X-CSRFToken": csrfToken } }),
    /** Now on the server's clock (ms). */
    now: () => clock.now() + serverOffsetMs
  };
}
