/*
 * The two things the dashboard builds from a client id: its page anchor (a link that opens the
 * dashboard on that client) and its API URLs, from the templates in dashboard-config where the
 * server writes "__CLIENT__" in place of the id.
 *
 * Client ids already read "client_<8 hex>", so the anchor is the id itself: #client_a7693612.
 * Links written before that doubled the prefix (#client_client_a7693612) and still open.
 */
const HASH_PREFIX = "#client_";
const ID_PREFIX = "client_";
const CLIENT_PLACEHOLDER = "__CLIENT__";

export function clientHash(id) {
  const text = String(id);
  return "#" + (text.startsWith(ID_PREFIX) ? "" : ID_PREFIX) + encodeURIComponent(text);
}

/** "#client_a7693612" and the older "#client_client_a7693612" → "client_a7693612"; else null. */
export function parseClientHash(hash) {
  if (!hash || !hash.startsWith(HASH_PREFIX)) return null;
  const rest = decodeURIComponent(hash.slice(HASH_PREFIX.length));
  if (!rest) return null;
  return rest.startsWith(ID_PREFIX) ? rest : ID_PREFIX + rest;
}

/** A per-client API URL (performance, events) from its template. */
export function clientUrl(template, clientId) {
  return String(template).split(CLIENT_PLACEHOLDER).join(encodeURIComponent(clientId));
}
