/*
 * The two things the dashboard builds from a client id: its page anchor (#client_<id>, a
 * link that opens the dashboard on that client) and its API URLs, from the templates in
 * dashboard-config where the server writes "__CLIENT__" in place of the id.
 */
const HASH_PREFIX = "#client_";
const CLIENT_PLACEHOLDER = "__CLIENT__";

export function clientHash(id) {
  return HASH_PREFIX + id;
}

/** "#client_12" → "12"; anything else → null. */
export function parseClientHash(hash) {
  if (!hash || !hash.startsWith(HASH_PREFIX)) return null;
  const id = decodeURIComponent(hash.slice(HASH_PREFIX.length));
  return id || null;
}

/** A per-client API URL (performance, events) from its template. */
export function clientUrl(template, clientId) {
  return String(template).split(CLIENT_PLACEHOLDER).join(encodeURIComponent(clientId));
}
