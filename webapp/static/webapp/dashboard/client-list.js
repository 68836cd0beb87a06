/*
 * The sidebar's client list. A map client id → row lets each poll touch only the text that
 * changed and move only the rows that are out of place (problems first, then by name): with
 * hundreds of clients a steady list is not touched at all. Rows are buttons (Tab,
 * Enter/Space; arrow keys, Home and End move between the rows shown). The filter hides rows
 * rather than rebuilding the list.
 */
import {
  formatPercent, formatReason, formatRelativeTime, formatStatusLabel, isFlagged, isNumber
} from "./format.js";
import { el, setAttr, setHidden, setStatusClass, setText, toggleClass } from "./dom.js";
import { statusInfo } from "./statuses.js";

const NAVIGATION_KEYS = ["ArrowDown", "ArrowUp", "Home", "End"];

/** Which of `count` rows gets the focus after `key`, from row `index` (-1: none focused). */
export function nextRowIndex(key, index, count) {
  if (key === "Home") return 0;
  if (key === "End") return count - 1;
  if (index < 0) return 0;
  return key === "ArrowDown" ? Math.min(count - 1, index + 1) : Math.max(0, index - 1);
}

/**
 * The round a client's figures (accuracy, loss, samples) are from, when it is not the round
 * the row shows: a client training round 15 still shows round 14's accuracy. Null otherwise,
 * or when the server does not say (`reported_round`).
 */
export function figuresRound(client) {
  const from = client.reported_round;
  if (!isNumber(client.accuracy) || !isNumber(from)) return null;
  return from !== client.current_round ? from : null;
}

/** "Round 15", or "Round 15 · acc. from round 14" when the figures beside it are older. */
export function roundText(client) {
  const text = "Round " + (isNumber(client.current_round) ? client.current_round : 0);
  const from = figuresRound(client);
  return from === null ? text : text + " · acc. from round " + from;
}

/** statuses: clientStatuses(groups); onSelect(id) when a row is chosen. */
export function createClientListView(root, statuses, onSelect) {
  const list = root.querySelector("#client-list");
  const placeholder = list.querySelector('[data-clients="placeholder"]');
  const count = root.querySelector('[data-clients="count"]');
  const filterSelect = root.querySelector("#client-filter");
  const problemsOption = filterSelect ? filterSelect.querySelector('option[value="problems"]') : null;
  const filterOptions = new Map(); // status → <option>
  const rows = new Map(); // id (string) → {button, name, statusDot, …, client}
  let filter = "";
  let lastClients = [];

  if (filterSelect) {
    for (const status of statuses.filterOrder) {
      const option = el("option", null, statusInfo(status).label);
      option.value = status;
      filterSelect.appendChild(option);
      filterOptions.set(status, option);
    }
  }

  function createRow(id) {
    const button = el("button", "list-group-item list-group-item-action client-row");
    button.type = "button";
    button.dataset.clientId = id;
    button.id = "client-row-" + id; // not "client_<id>": the hash must not scroll the page

    const name = el("span", "client-name");
    const accuracyWrap = el("span", "client-accuracy");
    const accuracy = el("span");
    accuracyWrap.append(el("span", "visually-hidden", "Accuracy "), accuracy);

    const status = el("span", "client-status");
    const statusDot = el("span", "status-dot");
    statusDot.setAttribute("aria-hidden", "true");
    const statusLabel = el("span", "status-label");
    status.append(statusDot, statusLabel);

    const round = el("span", "client-round");
    const meta = el("span", "client-meta");
    const seen = el("span", "client-seen");

    button.append(name, accuracyWrap, status, round, meta, seen);
    const row = { button, name, statusDot, statusLabel, accuracy, round, meta, seen, client: null };
    rows.set(id, row);
    return row;
  }

  function renderSeen(row, nowMs) {
    const lastSeen = row.client.last_seen;
    setText(row.seen, lastSeen ? "seen " + formatRelativeTime(lastSeen, nowMs) : "not seen yet");
  }

  function updateRow(row, client, nowMs) {
    row.client = client;
    setText(row.name, client.name || "Client " + client.id);
    setStatusClass(row.statusDot, client.status);
    setText(row.statusLabel, formatStatusLabel(client));
    setText(row.accuracy, formatPercent(client.accuracy));
    setText(row.round, roundText(client));
    setText(row.meta, client.dataset_name || "No dataset");
    renderSeen(row, nowMs);
    setAttr(row.button, "title", formatReason(client, nowMs) || null);
    toggleClass(row.button, "is-flagged", isFlagged(client, statuses));
    setHidden(row.button, !statuses.matchesFilter(client, filter));
  }

  function renderCounts(clients) {
    const byStatus = new Map();
    let problems = 0;
    let shown = 0;
    for (const c of clients) {
      byStatus.set(c.status, (byStatus.get(c.status) || 0) + 1);
      if (statuses.isWarning(c.status)) problems++;
      if (statuses.matchesFilter(c, filter)) shown++;
    }
    filterOptions.forEach((option, status) => {
      setText(option, `${statusInfo(status).label} (${byStatus.get(status) || 0})`);
    });
    if (problemsOption) {
      setText(problemsOption, `Problems — ${statuses.warning.join(", ")} (${problems})`);
    }
    const total = clients.length === 1 ? "1 client" : clients.length + " clients";
    setText(count, filter ? `${shown} of ${total}` : total);
    if (placeholder) {
      setText(placeholder, clients.length ? "No client matches this filter." : "No clients have joined this job yet.");
      setHidden(placeholder, shown > 0);
    }
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("[data-client-id]");
    if (button && list.contains(button)) onSelect(button.dataset.clientId);
  });

  list.addEventListener("keydown", (event) => {
    if (!NAVIGATION_KEYS.includes(event.key)) return;
    const buttons = [...list.querySelectorAll("[data-client-id]:not([hidden])")];
    if (!buttons.length) return;
    event.preventDefault();
    buttons[nextRowIndex(event.key, buttons.indexOf(document.activeElement), buttons.length)].focus();
  });

  if (filterSelect) {
    filterSelect.addEventListener("change", () => {
      filter = filterSelect.value;
      rows.forEach((row) => setHidden(row.button, !statuses.matchesFilter(row.client, filter)));
      renderCounts(lastClients);
    });
  }

  return {
    render(clients, nowMs) {
      lastClients = clients;
      const present = new Set();
      const offset = placeholder ? 1 : 0;
      clients.slice().sort(statuses.compareClients).forEach((client, index) => {
        const id = String(client.id);
        present.add(id);
        const row = rows.get(id) || createRow(id);
        updateRow(row, client, nowMs);
        const wanted = list.children[index + offset];
        if (wanted !== row.button) list.insertBefore(row.button, wanted || null);
      });
      rows.forEach((row, id) => {
        if (!present.has(id)) {
          row.button.remove();
          rows.delete(id);
        }
      });
      renderCounts(clients);
    },
    /** Keep every row's "seen … ago" ticking between polls. */
    tick(nowMs) {
      rows.forEach((row) => { if (row.client) renderSeen(row, nowMs); });
    },
    markSelected(selectedId) {
      rows.forEach((row, id) => {
        const on = id === selectedId;
        toggleClass(row.button, "is-selected", on);
        setAttr(row.button, "aria-current", on ? "true" : null);
      });
    },
    reveal(id) {
      const row = rows.get(id);
      if (row) row.button.scrollIntoView({ block: "nearest" });
    }
  };
}
