/*
 * DOM helpers that touch a node only when its value changes: a poll that brings nothing new
 * leaves the page alone (no layout, no screen-reader chatter, a selection kept). Text is
 * always set as text: site and dataset names come from hospitals and are never HTML.
 */
import { isNumber } from "./format.js";
import { statusInfo } from "./statuses.js";

export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

export function setHidden(node, hidden) {
  if (node && node.hidden !== hidden) node.hidden = hidden;
}

/** Set an attribute, or remove it when value is null. */
export function setAttr(node, name, value) {
  if (!node) return;
  if (value == null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

export function toggleClass(node, className, on) {
  if (node && node.classList.contains(className) !== on) node.classList.toggle(className, on);
}

/** Swap the node's status-<value> colour class when the status changes. */
export function setStatusClass(node, status) {
  if (!node || node.dataset.status === String(status)) return;
  for (const c of [...node.classList]) {
    if (c.startsWith("status-") && c !== "status-badge" && c !== "status-dot") node.classList.remove(c);
  }
  node.classList.add(statusInfo(status).className);
  node.dataset.status = String(status);
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** <span class="status-badge status-x"><span class="status-dot"></span>Label</span>, as
 *  _status_badge.html renders it on the server. */
export function createStatusBadge() {
  const badge = el("span", "status-badge");
  const dot = el("span", "status-dot");
  dot.setAttribute("aria-hidden", "true");
  badge.append(dot, document.createTextNode(""));
  return badge;
}

export function updateStatusBadge(badge, status) {
  setStatusClass(badge, status);
  const label = statusInfo(status).label;
  const textNode = badge.lastChild;
  if (textNode.nodeValue !== label) textNode.nodeValue = label;
}

export function setProgress(container, current, total) {
  if (!container) return;
  const bar = container.querySelector(".progress-bar");
  const cur = isNumber(current) ? current : 0;
  const tot = isNumber(total) ? total : 0;
  const pct = tot > 0 ? Math.min(100, Math.max(0, (cur / tot) * 100)) : 0;
  setAttr(container, "aria-valuenow", cur);
  setAttr(container, "aria-valuemax", tot);
  if (bar && bar.style.width !== pct + "%") bar.style.width = pct + "%";
}
