/*
 * FedTrack — live client dashboard.
 *
 * Reads its configuration from the json_script block #dashboard-config:
 *   { job_id, clients_url, job_url, performance_url_template / events_url_template
 *     ("__CLIENT__"), history_csv_url, stop_url, model_url, login_url?,
 *     poll: {training_ms, between_rounds_ms, ended_ms, hidden_factor, retry_base_ms,
 *            retry_max_ms} }
 * (login_url falls back to data-login-url on #dashboard).
 *
 * Polling is adaptive (fast while a client trains, slower between rounds, slow once the job
 * has ended, slower still in a hidden tab) and conditional: the two snapshots are fetched
 * with If-None-Match, and a 304 keeps the view as it is. #dashboard carries the current
 * interval in data-poll-interval (ms) and its reason in data-poll-mode.
 *
 * Layout of this file, top to bottom:
 *   1. statuses      – the one place that maps a status to a label + colour class
 *   2. formatting    – pure functions (numbers, percentages, relative time)
 *   3. api           – the one place that talks to the server (fetch)
 *   4. dom helpers   – update a node only when its value changed
 *   5. views         – job header, overview cards, client list, client detail, chart
 *   6. controller    – polling, selection (#client_<id>), stop job
 *
 * Everything coming from the API is written with textContent: site and dataset
 * names come from hospitals and are never treated as HTML.
 */
(function () {
  "use strict";

  /* ======================================================================
   * 1. Statuses
   * ==================================================================== */

  // Labels for client and job statuses. Colours are CSS classes
  // (.status-<value> in app.css), shared with the server-rendered badges.
  var STATUS_LABELS = {
    // client statuses
    pending: "Pending",
    connected: "Connected",
    training: "Training",
    reported: "Reported",
    completed: "Completed",
    error: "Error",
    offline: "Offline",
    slow: "Slow",
    // job-only statuses
    running: "Running",
    failed: "Failed",
    stopped: "Stopped"
  };
  var ACTIVE_CLIENT_STATUSES = ["connected", "training", "slow"];
  var WARNING_CLIENT_STATUSES = ["error", "offline", "slow"];
  var TRAINING_CLIENT_STATUSES = ["training", "slow"];
  // The filter's order; problems first in the list, the most urgent first.
  var CLIENT_STATUS_ORDER = ["error", "offline", "slow", "training", "connected", "pending",
    "reported", "completed", "stopped"];
  var TERMINAL_JOB_STATUSES = ["completed", "failed", "stopped", "error"];
  var STOPPABLE_JOB_STATUSES = ["pending", "running"];

  /** {label, className} for any client or job status; unknown values stay readable. */
  function statusInfo(status) {
    var key = status == null ? "" : String(status);
    if (Object.prototype.hasOwnProperty.call(STATUS_LABELS, key)) {
      return { label: STATUS_LABELS[key], className: "status-" + key };
    }
    var fallback = key ? key.charAt(0).toUpperCase() + key.slice(1).replace(/_/g, " ") : "Unknown";
    return { label: fallback, className: "status-unknown" };
  }

  function isTerminalJobStatus(status) {
    return TERMINAL_JOB_STATUSES.indexOf(status) !== -1;
  }

  function isWarningStatus(status) {
    return WARNING_CLIENT_STATUSES.indexOf(status) !== -1;
  }

  /** Sort key: problems first (error, offline, slow), then by name, then id. */
  function compareClients(a, b) {
    var pa = WARNING_CLIENT_STATUSES.indexOf(a.status);
    var pb = WARNING_CLIENT_STATUSES.indexOf(b.status);
    pa = pa === -1 ? WARNING_CLIENT_STATUSES.length : pa;
    pb = pb === -1 ? WARNING_CLIENT_STATUSES.length : pb;
    if (pa !== pb) return pa - pb;
    var na = String(a.name || "").toLowerCase();
    var nb = String(b.name || "").toLowerCase();
    if (na !== nb) return na < nb ? -1 : 1;
    return String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0;
  }

  /** Does a client pass the list filter ("" = all, "problems", or one status)? */
  function matchesFilter(client, filter) {
    if (!filter) return true;
    if (filter === "problems") return isWarningStatus(client.status);
    return client.status === filter;
  }

  /* ======================================================================
   * 2. Formatting (pure, no DOM)
   * ==================================================================== */

  var DASH = "—";

  function isNumber(value) {
    return typeof value === "number" && isFinite(value);
  }

  /** 0.85 → "85.0%"; null/undefined → "—". */
  function formatPercent(fraction) {
    return isNumber(fraction) ? (fraction * 100).toFixed(1) + "%" : DASH;
  }

  /** Fraction → percentage number for the chart (null stays null → gap). */
  function toPercent(fraction) {
    return isNumber(fraction) ? Math.round(fraction * 10000) / 100 : null;
  }

  function formatLoss(loss) {
    return isNumber(loss) ? loss.toFixed(4) : DASH;
  }

  function formatSeconds(seconds) {
    return isNumber(seconds) ? seconds.toFixed(2) + " s" : DASH;
  }

  function formatCount(n) {
    return isNumber(n) ? n.toLocaleString() : DASH;
  }

  function formatSecondsShort(seconds) {
    return isNumber(seconds) ? Math.max(0, Math.round(seconds)) + " s" : DASH;
  }

  /** A status reason, with the straggler's expected reply time when the API gives one
   *  (an absolute time, so the countdown stays right between polls and across 304s). */
  function formatReason(client, nowMs) {
    var parts = [];
    if (client.status_reason) parts.push(String(client.status_reason));
    var expected = client.expected_at ? Date.parse(client.expected_at) : NaN;
    if (!isNaN(expected)) {
      var left = (expected - (nowMs || Date.now())) / 1000;
      parts.push(left > 0 ? "expected in about " + formatSecondsShort(left) : "overdue");
    }
    return parts.join(" — ");
  }

  function formatRound(current, total) {
    return "Round " + (isNumber(current) ? current : 0) + " / " + (isNumber(total) ? total : 0);
  }

  function formatAddress(ip, port) {
    if (!ip) return DASH;
    var host = String(ip).indexOf(":") !== -1 ? "[" + ip + "]" : String(ip); // IPv6
    return port == null || port === "" ? host : host + ":" + port;
  }

  /** ISO-8601 timestamp → "4 s ago" / "3 min ago" / "2 h ago" / "5 d ago"; null → "never". */
  function formatRelativeTime(iso, nowMs) {
    if (!iso) return "never";
    var then = Date.parse(iso);
    if (isNaN(then)) return DASH;
    var seconds = Math.round((nowMs - then) / 1000);
    if (seconds < 1) return "just now";
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function formatAbsoluteTime(iso) {
    var then = iso ? Date.parse(iso) : NaN;
    return isNaN(then) ? "" : new Date(then).toLocaleString();
  }

  var HASH_PREFIX = "#client_";

  function clientHash(id) {
    return HASH_PREFIX + id;
  }

  /** "#client_12" → "12"; anything else → null. */
  function parseClientHash(hash) {
    if (!hash || hash.indexOf(HASH_PREFIX) !== 0) return null;
    var id = decodeURIComponent(hash.slice(HASH_PREFIX.length));
    return id ? id : null;
  }

  function performanceUrl(template, clientId) {
    return String(template).split("__CLIENT__").join(encodeURIComponent(clientId));
  }

  /** One timeline entry as a sentence: joined, started round N, reported, dropped, … */
  function describeEvent(event) {
    var round = isNumber(event.round) && event.round > 0 ? " round " + event.round : "";
    var message = event.message ? String(event.message) : "";
    var text;
    switch (event.new_status) {
      case "connected":
        text = event.old_status === "offline" || event.old_status === "error" ? "Rejoined" : "Joined";
        break;
      case "training": text = "Started" + (round || " training"); break;
      case "reported": text = "Reported" + round; break;
      case "evaluated": text = "Evaluated" + round; break;
      case "completed": text = "Completed the job"; break;
      case "stopped": text = "Stopped"; break;
      case "error": text = "Error" + (round ? " in" + round : ""); break;
      case "offline": text = "Dropped out" + (round ? " in" + round : ""); break;
      case "slow": text = "Straggling" + (round ? " in" + round : ""); break;
      default:
        text = statusInfo(event.old_status).label + " → " + statusInfo(event.new_status).label;
    }
    return message ? text + ": " + message : text;
  }

  /* ======================================================================
   * 3. API — every request goes through requestJSON
   * ==================================================================== */

  /** status 0 = network failure / no usable answer. */
  function ApiError(status, message) {
    this.name = "ApiError";
    this.status = status;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;

  function createApi(options) {
    var loginPath = options.loginUrl ? new URL(options.loginUrl, window.location.href).pathname : null;
    var api = { serverOffsetMs: 0 };

    function looksLikeLoginRedirect(response) {
      if (!loginPath || !response.redirected || !response.url) return false;
      return new URL(response.url).pathname === loginPath;
    }

    function rememberServerClock(response) {
      var header = response.headers.get("Date");
      var serverMs = header ? Date.parse(header) : NaN;
      if (!isNaN(serverMs)) api.serverOffsetMs = serverMs - Date.now();
    }

    /**
     * fetch + JSON. Resolves with the parsed body when the server answered
     * {"success": true, …}; rejects with ApiError otherwise.
     */
    var snapshots = new Map(); // url → {tag, body}: the last 200 answer of a conditional GET

    function requestJSON(url, init) {
      var conditional = Boolean(init && init.conditional);
      var cached = conditional ? snapshots.get(url) : null;
      var headers = { Accept: "application/json" };
      if (cached) headers["If-None-Match"] = cached.tag;
      var extra = (init && init.headers) || {};
      Object.keys(extra).forEach(function (k) { headers[k] = extra[k]; });
      var request = {
        method: (init && init.method) || "GET",
        credentials: "same-origin",
        headers: headers,
        cache: "no-store"
      };

      return fetch(url, request).then(
        function (response) {
          if (looksLikeLoginRedirect(response)) {
            throw new ApiError(401, "Your session has expired.");
          }
          rememberServerClock(response);
          if (response.status === 304 && cached) {
            return { body: cached.body, changed: false };
          }
          return response.text().then(function (text) {
            var body = null;
            try {
              body = text ? JSON.parse(text) : null;
            } catch (e) {
              body = null;
            }
            var serverMessage = body && typeof body.error === "string" ? body.error : "";
            if (!response.ok) {
              throw new ApiError(response.status, serverMessage || "Request failed (HTTP " + response.status + ").");
            }
            if (!body || body.success !== true) {
              throw new ApiError(0, serverMessage || "Unexpected answer from the server.");
            }
            if (!conditional) return body;
            var tag = response.headers.get("ETag");
            if (tag) snapshots.set(url, { tag: tag, body: body });
            else snapshots.delete(url);
            return { body: body, changed: true };
          });
        },
        function () {
          throw new ApiError(0, "The server could not be reached.");
        }
      );
    }

    api.get = function (url) {
      return requestJSON(url);
    };
    /** Conditional GET: resolves {body, changed}; a 304 gives the last body, changed=false. */
    api.getSnapshot = function (url) {
      return requestJSON(url, { conditional: true });
    };
    api.post = function (url, csrfToken) {
      return requestJSON(url, { method: "POST", headers: { "X-CSRFToken": csrfToken } });
    };
    api.now = function () {
      return Date.now() + api.serverOffsetMs;
    };
    return api;
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split(";") : [];
    for (var i = 0; i < parts.length; i++) {
      var pair = parts[i].trim();
      if (pair.indexOf(name + "=") === 0) {
        return decodeURIComponent(pair.slice(name.length + 1));
      }
    }
    return null;
  }

  /* ======================================================================
   * 4. DOM helpers — touch a node only when its value actually changes
   * ==================================================================== */

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setHidden(el, hidden) {
    if (el && el.hidden !== hidden) el.hidden = hidden;
  }

  function setAttr(el, name, value) {
    if (!el) return;
    if (value == null) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== String(value)) {
      el.setAttribute(name, String(value));
    }
  }

  function toggleClass(el, className, on) {
    if (el && el.classList.contains(className) !== on) el.classList.toggle(className, on);
  }

  /** Swap the element's status-* class (colour) when the status changes. */
  function setStatusClass(el, status) {
    if (!el || el.dataset.status === String(status)) return;
    var info = statusInfo(status);
    Array.prototype.slice.call(el.classList).forEach(function (c) {
      if (c.indexOf("status-") === 0 && c !== "status-badge" && c !== "status-dot") el.classList.remove(c);
    });
    el.classList.add(info.className);
    el.dataset.status = String(status);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  /** <span class="status-badge status-x"><span class="status-dot"></span>Label</span> */
  function createStatusBadge() {
    var badge = el("span", "status-badge");
    var dot = el("span", "status-dot");
    dot.setAttribute("aria-hidden", "true");
    badge.appendChild(dot);
    badge.appendChild(document.createTextNode(""));
    return badge;
  }

  function updateStatusBadge(badge, status) {
    setStatusClass(badge, status);
    var label = statusInfo(status).label;
    var textNode = badge.lastChild;
    if (textNode.nodeValue !== label) textNode.nodeValue = label;
  }

  function setProgress(container, current, total) {
    if (!container) return;
    var bar = container.querySelector(".progress-bar");
    var cur = isNumber(current) ? current : 0;
    var tot = isNumber(total) ? total : 0;
    var pct = tot > 0 ? Math.min(100, Math.max(0, (cur / tot) * 100)) : 0;
    setAttr(container, "aria-valuenow", cur);
    setAttr(container, "aria-valuemax", tot);
    if (bar && bar.style.width !== pct + "%") bar.style.width = pct + "%";
  }

  /* ======================================================================
   * 5. Views
   * ==================================================================== */

  /** Job header, round card, error message, stop/download buttons. */
  function createJobView(root) {
    var nodes = {
      name: root.querySelector('[data-job="name"]'),
      badgeSlot: root.querySelector('[data-job="status-badge"]'),
      error: root.querySelector('[data-job="error"]'),
      errorBox: root.querySelector("#job-error"),
      round: root.querySelector('[data-stat="round"]'),
      progress: root.querySelector('[data-stat="round-progress"]'),
      stopForm: root.querySelector("#stop-job-form"),
      download: root.querySelector("#download-model")
    };
    var badge = nodes.badgeSlot.querySelector(".status-badge");
    if (!badge || badge.lastChild.nodeType !== 3) {
      badge = createStatusBadge();
      nodes.badgeSlot.textContent = "";
      nodes.badgeSlot.appendChild(badge);
    }

    return {
      render: function (job) {
        setText(nodes.name, job.name || "Job " + job.id);
        updateStatusBadge(badge, job.status);
        setText(nodes.round, formatRound(job.current_round, job.total_rounds));
        setProgress(nodes.progress, job.current_round, job.total_rounds);
        setText(nodes.error, job.error_message || "");
        setHidden(nodes.errorBox, !job.error_message);
        setHidden(nodes.stopForm, STOPPABLE_JOB_STATUSES.indexOf(job.status) === -1);
        setHidden(nodes.download, !(job.status === "completed" && job.model_available !== false));
      },
      hideActions: function () {
        setHidden(nodes.stopForm, true);
        setHidden(nodes.download, true);
      }
    };
  }

  /** The counters: total, active, warnings, accuracy, health, stragglers, samples. */
  function createOverviewView(root) {
    var nodes = {
      total: root.querySelector('[data-stat="total"]'),
      active: root.querySelector('[data-stat="active"]'),
      warning: root.querySelector('[data-stat="warning"]'),
      accuracy: root.querySelector('[data-stat="accuracy"]'),
      health: root.querySelector('[data-stat="health"]'),
      healthProgress: root.querySelector('[data-stat="health-progress"]'),
      stragglers: root.querySelector('[data-stat="stragglers"]'),
      samples: root.querySelector('[data-stat="samples"]')
    };
    return {
      render: function (stats, clients) {
        stats = stats || {};
        var anyAccuracy = clients.some(function (c) { return isNumber(c.accuracy); });
        var warnings = isNumber(stats.warning_clients)
          ? stats.warning_clients
          : clients.filter(function (c) { return isWarningStatus(c.status); }).length;
        setText(nodes.total, String(isNumber(stats.total_clients) ? stats.total_clients : clients.length));
        setText(nodes.active, String(isNumber(stats.active_clients)
          ? stats.active_clients
          : clients.filter(function (c) { return ACTIVE_CLIENT_STATUSES.indexOf(c.status) !== -1; }).length));
        setText(nodes.warning, String(warnings));
        toggleClass(nodes.warning, "has-warnings", warnings > 0);
        setText(nodes.accuracy, anyAccuracy ? formatPercent(stats.avg_accuracy) : DASH);

        var total = clients.length;
        var health = isNumber(stats.federation_health)
          ? stats.federation_health
          : (total ? clients.filter(function (c) { return ACTIVE_CLIENT_STATUSES.indexOf(c.status) !== -1; }).length / total : 0);
        setText(nodes.health, total ? Math.round(health * 100) + "%" : DASH);
        setProgress(nodes.healthProgress, Math.round(health * 100), 100);
        var stragglers = isNumber(stats.stragglers)
          ? stats.stragglers
          : clients.filter(function (c) { return c.status === "slow"; }).length;
        setText(nodes.stragglers, String(stragglers));
        toggleClass(nodes.stragglers, "has-warnings", stragglers > 0);
        setText(nodes.samples, isNumber(stats.avg_samples) && stats.avg_samples > 0
          ? formatCount(Math.round(stats.avg_samples)) : DASH);
      }
    };
  }

  /**
   * The sidebar list. Keeps a map client id → row so each poll only touches the text that
   * changed and moves only rows that are out of place (problems first, then by name); rows
   * are buttons (keyboard: Tab, Enter/Space, arrow keys/Home/End move between shown rows).
   * The filter hides rows rather than rebuilding the list.
   */
  function createClientListView(root, onSelect) {
    var list = root.querySelector("#client-list");
    var placeholder = list.querySelector('[data-clients="placeholder"]');
    var count = root.querySelector('[data-clients="count"]');
    var filterSelect = root.querySelector("#client-filter");
    var filter = "";
    var filterOptions = new Map(); // status → <option>
    var rows = new Map(); // id (string) → {button, name, statusDot, statusLabel, accuracy, round, meta, seen, client}
    var lastClients = [];

    if (filterSelect) {
      CLIENT_STATUS_ORDER.forEach(function (status) {
        var option = el("option", null, statusInfo(status).label);
        option.value = status;
        filterSelect.appendChild(option);
        filterOptions.set(status, option);
      });
    }

    function createRow(id) {
      var button = el("button", "list-group-item list-group-item-action client-row");
      button.type = "button";
      button.dataset.clientId = id;
      button.id = "client-row-" + id; // not "client_<id>": the hash must not scroll the page

      var name = el("span", "client-name");
      var accuracyWrap = el("span", "client-accuracy");
      var accuracyHint = el("span", "visually-hidden", "Accuracy ");
      var accuracy = el("span");
      accuracyWrap.appendChild(accuracyHint);
      accuracyWrap.appendChild(accuracy);

      var status = el("span", "client-status");
      var statusDot = el("span", "status-dot");
      statusDot.setAttribute("aria-hidden", "true");
      var statusLabel = el("span", "status-label");
      status.appendChild(statusDot);
      status.appendChild(statusLabel);

      var round = el("span", "client-round");
      var meta = el("span", "client-meta");
      var seen = el("span", "client-seen");

      [name, accuracyWrap, status, round, meta, seen].forEach(function (n) { button.appendChild(n); });
      var row = { button: button, name: name, statusDot: statusDot, statusLabel: statusLabel,
        accuracy: accuracy, round: round, meta: meta, seen: seen, client: null };
      rows.set(id, row);
      return row;
    }

    function renderSeen(row, nowMs) {
      setText(row.seen, row.client.last_seen ? "seen " + formatRelativeTime(row.client.last_seen, nowMs) : "not seen yet");
    }

    function updateRow(row, client, nowMs) {
      row.client = client;
      setText(row.name, client.name || "Client " + client.id);
      setStatusClass(row.statusDot, client.status);
      setText(row.statusLabel, statusInfo(client.status).label);
      setText(row.accuracy, formatPercent(client.accuracy));
      setText(row.round, "Round " + (isNumber(client.current_round) ? client.current_round : 0));
      setText(row.meta, client.dataset_name || "No dataset");
      renderSeen(row, nowMs);
      setAttr(row.button, "title", formatReason(client) || null);
      toggleClass(row.button, "is-flagged", isWarningStatus(client.status));
      setHidden(row.button, !matchesFilter(client, filter));
    }

    function renderCounts(clients) {
      var byStatus = {};
      var problems = 0;
      var shown = 0;
      clients.forEach(function (c) {
        byStatus[c.status] = (byStatus[c.status] || 0) + 1;
        if (isWarningStatus(c.status)) problems++;
        if (matchesFilter(c, filter)) shown++;
      });
      filterOptions.forEach(function (option, status) {
        setText(option, statusInfo(status).label + " (" + (byStatus[status] || 0) + ")");
      });
      if (filterSelect) setText(filterSelect.options[1], "Problems — error, offline, slow (" + problems + ")");
      var total = clients.length === 1 ? "1 client" : clients.length + " clients";
      setText(count, filter ? shown + " of " + total : total);
      if (placeholder) {
        setText(placeholder, clients.length ? "No client matches this filter." : "No clients have joined this job yet.");
        setHidden(placeholder, shown > 0);
      }
    }

    list.addEventListener("click", function (event) {
      var button = event.target.closest("[data-client-id]");
      if (button && list.contains(button)) onSelect(button.dataset.clientId);
    });

    list.addEventListener("keydown", function (event) {
      var keys = ["ArrowDown", "ArrowUp", "Home", "End"];
      if (keys.indexOf(event.key) === -1) return;
      var buttons = Array.prototype.slice.call(list.querySelectorAll("[data-client-id]:not([hidden])"));
      if (!buttons.length) return;
      var index = buttons.indexOf(document.activeElement);
      var next;
      if (event.key === "Home") next = 0;
      else if (event.key === "End") next = buttons.length - 1;
      else if (event.key === "ArrowDown") next = index < 0 ? 0 : Math.min(buttons.length - 1, index + 1);
      else next = index < 0 ? 0 : Math.max(0, index - 1);
      event.preventDefault();
      buttons[next].focus();
    });

    if (filterSelect) {
      filterSelect.addEventListener("change", function () {
        filter = filterSelect.value;
        rows.forEach(function (row) { setHidden(row.button, !matchesFilter(row.client, filter)); });
        renderCounts(lastClients);
      });
    }

    return {
      render: function (clients, nowMs) {
        lastClients = clients;
        var sorted = clients.slice().sort(compareClients);
        var seen = new Set();
        var offset = placeholder ? 1 : 0;
        sorted.forEach(function (client, index) {
          var id = String(client.id);
          seen.add(id);
          var row = rows.get(id) || createRow(id);
          updateRow(row, client, nowMs);
          // Move a node only when it is out of place: a steady list is not touched.
          var wanted = list.children[index + offset];
          if (wanted !== row.button) list.insertBefore(row.button, wanted || null);
        });
        rows.forEach(function (row, id) {
          if (!seen.has(id)) {
            row.button.remove();
            rows.delete(id);
          }
        });
        renderCounts(clients);
      },
      /** Keep every row's "seen … ago" ticking between polls. */
      tick: function (nowMs) {
        rows.forEach(function (row) { if (row.client) renderSeen(row, nowMs); });
      },
      markSelected: function (selectedId) {
        rows.forEach(function (row, id) {
          var on = id === selectedId;
          toggleClass(row.button, "is-selected", on);
          setAttr(row.button, "aria-current", on ? "true" : null);
        });
      },
      reveal: function (id) {
        var row = rows.get(id);
        if (row && row.button.scrollIntoView) row.button.scrollIntoView({ block: "nearest" });
      }
    };
  }

  /** Line chart of accuracy (%) and loss per round; created once, updated in place. */
  function createPerformanceChart(canvas) {
    if (!canvas || typeof window.Chart !== "function") return null;
    var reducedMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var chart = new window.Chart(canvas, {
      type: "line",
      data: {
        labels: [],
        datasets: [
          {
            label: "Accuracy (%, evaluation)",
            data: [],
            yAxisID: "yAccuracy",
            borderColor: "#0a58ca",
            backgroundColor: "rgba(10, 88, 202, 0.15)",
            pointRadius: 3,
            tension: 0.25,
            spanGaps: true
          },
          {
            label: "Loss (evaluation)",
            data: [],
            yAxisID: "yLoss",
            borderColor: "#b02a37",
            backgroundColor: "rgba(176, 42, 55, 0.15)",
            borderDash: [6, 4],
            pointStyle: "rectRot",
            pointRadius: 4,
            tension: 0.25,
            spanGaps: true
          },
          {
            label: "Loss (training)",
            data: [],
            yAxisID: "yLoss",
            borderColor: "#9a4a00",
            backgroundColor: "rgba(154, 74, 0, 0.15)",
            borderDash: [2, 3],
            pointStyle: "triangle",
            pointRadius: 4,
            tension: 0.25,
            spanGaps: true
          }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: reducedMotion ? false : { duration: 250 },
        interaction: { mode: "index", intersect: false },
        scales: {
          yAccuracy: {
            type: "linear",
            position: "left",
            min: 0,
            max: 100,
            title: { display: true, text: "Accuracy (%)" },
            ticks: { callback: function (value) { return value + "%"; } }
          },
          yLoss: {
            type: "linear",
            position: "right",
            beginAtZero: true,
            title: { display: true, text: "Loss" },
            grid: { drawOnChartArea: false }
          }
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var v = ctx.parsed.y;
                if (v == null) return ctx.dataset.label + ": " + DASH;
                return ctx.datasetIndex === 0
                  ? "Accuracy: " + v.toFixed(1) + "%"
                  : ctx.dataset.label + ": " + v.toFixed(4);
              }
            }
          }
        }
      }
    });
    return chart;
  }

  /** Bar chart of a client's response time per round; created once, updated in place. */
  function createResponseTimeChart(canvas) {
    if (!canvas || typeof window.Chart !== "function") return null;
    var reducedMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: [],
        datasets: [{ label: "Response time (s)", data: [], backgroundColor: "#0b7285" }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: reducedMotion ? false : { duration: 250 },
        scales: { y: { beginAtZero: true, title: { display: true, text: "Seconds" } } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (ctx) { return formatSeconds(ctx.parsed.y); } } }
        }
      }
    });
  }

  /** Client detail card: fields, charts and the event timeline. */
  function createDetailView(root) {
    var card = root.querySelector("#client-detail");
    var q = function (sel) { return card.querySelector(sel); };
    var nodes = {
      title: q('[data-detail="title"]'),
      badgeSlot: q('[data-detail="status-badge"]'),
      placeholder: q('[data-detail="placeholder"]'),
      body: q('[data-detail="body"]'),
      chartStatus: q('[data-detail="chart-status"]'),
      canvas: q("#performance-chart"),
      responseCanvas: q("#response-time-chart"),
      timeline: q("#client-timeline"),
      timelineStatus: q('[data-detail="timeline-status"]')
    };
    var fields = {};
    Array.prototype.forEach.call(card.querySelectorAll("[data-field]"), function (n) {
      fields[n.dataset.field] = n;
    });
    var defaultPlaceholder = nodes.placeholder.textContent.trim();
    var defaultCanvasLabel = nodes.canvas ? nodes.canvas.getAttribute("aria-label") : "";
    var badge = createStatusBadge();
    var chart = null;
    var responseChart = null;
    var timelineKey = null;

    function ensureChart() {
      if (!chart) chart = createPerformanceChart(nodes.canvas);
      if (!responseChart) responseChart = createResponseTimeChart(nodes.responseCanvas);
      return chart;
    }

    return {
      showPlaceholder: function (text) {
        setText(nodes.title, "Client details");
        if (badge.parentNode) badge.remove();
        setText(nodes.placeholder, text || defaultPlaceholder);
        setHidden(nodes.placeholder, false);
        setHidden(nodes.body, true);
      },
      render: function (client, nowMs) {
        setText(nodes.title, client.name || "Client " + client.id);
        if (!badge.parentNode) nodes.badgeSlot.appendChild(badge);
        updateStatusBadge(badge, client.status);
        setHidden(nodes.placeholder, true);
        setHidden(nodes.body, false);

        setText(fields.address, formatAddress(client.ip, client.port));
        setText(fields.dataset, client.dataset_name || DASH);
        setText(fields.id, String(client.id));
        setText(fields.status, statusInfo(client.status).label);
        setText(fields.status_reason, formatReason(client));
        setText(fields.round, isNumber(client.current_round) ? String(client.current_round) : DASH);
        setText(fields.accuracy, formatPercent(client.accuracy));
        setText(fields.loss, formatLoss(client.loss));
        setText(fields.samples, formatCount(client.train_samples) + " / " + formatCount(client.test_samples));
        setText(fields.response_time, formatSeconds(client.response_time));
        setText(fields.last_seen, formatRelativeTime(client.last_seen, nowMs));
        setAttr(fields.last_seen, "title", formatAbsoluteTime(client.last_seen) || null);
      },
      /** Only the relative "last seen" text (kept fresh between polls). */
      renderLastSeen: function (client, nowMs) {
        setText(fields.last_seen, formatRelativeTime(client.last_seen, nowMs));
      },
      setChartStatus: function (text) {
        setText(nodes.chartStatus, text || "");
      },
      /** Replace the chart's data (keeps the same Chart instance). */
      setPerformance: function (perf) {
        var c = ensureChart();
        if (!c) {
          setText(nodes.chartStatus, "The chart library could not be loaded.");
          return;
        }
        perf = perf || {};
        var labels = Array.isArray(perf.labels) ? perf.labels.slice() : [];
        var accuracy = (Array.isArray(perf.accuracy) ? perf.accuracy : []).map(toPercent);
        var numbers = function (key) {
          return (Array.isArray(perf[key]) ? perf[key] : []).map(function (v) { return isNumber(v) ? v : null; });
        };
        var loss = numbers("loss");
        var trainLoss = numbers("train_loss");
        c.data.labels = labels;
        c.data.datasets[0].data = accuracy;
        c.data.datasets[1].data = loss;
        c.data.datasets[2].data = trainLoss;
        c.data.datasets[2].hidden = !trainLoss.some(isNumber);
        c.update();
        if (responseChart) {
          responseChart.data.labels = labels.slice();
          responseChart.data.datasets[0].data = numbers("response_time");
          responseChart.update();
        }

        var last = labels.length - 1;
        if (last < 0) {
          setText(nodes.chartStatus, "No round has been reported yet.");
          setAttr(nodes.canvas, "aria-label", defaultCanvasLabel);
        } else {
          setText(nodes.chartStatus, "");
          var accText = accuracy[last] == null ? DASH : accuracy[last].toFixed(1) + "%";
          setAttr(nodes.canvas, "aria-label", "Accuracy and loss per round. Latest, " + labels[last] +
            ": accuracy " + accText + ", loss " + formatLoss(loss[last]) + ".");
        }
      },
      clearPerformance: function () {
        [chart, responseChart].forEach(function (c) {
          if (!c) return;
          c.data.labels = [];
          c.data.datasets.forEach(function (d) { d.data = []; });
          c.update();
        });
        setAttr(nodes.canvas, "aria-label", defaultCanvasLabel);
        timelineKey = null;
        if (nodes.timeline) nodes.timeline.textContent = "";
      },
      setTimelineStatus: function (text) {
        setText(nodes.timelineStatus, text || "");
      },
      /** The client's events, newest first; rebuilt only when they changed. */
      setTimeline: function (events, truncated) {
        if (!nodes.timeline) return;
        events = Array.isArray(events) ? events : [];
        var last = events[events.length - 1];
        var key = events.length + "|" + (last ? last.time + last.new_status : "");
        setText(nodes.timelineStatus, events.length
          ? (truncated ? "Showing the latest " + events.length + " events." : "")
          : "No events yet.");
        if (key === timelineKey) return;
        timelineKey = key;
        var fragment = document.createDocumentFragment();
        for (var i = events.length - 1; i >= 0; i--) {
          var event = events[i];
          var item = el("li", "timeline-item");
          item.dataset.status = String(event.new_status);
          var time = el("time", "timeline-time", event.time ? new Date(event.time).toLocaleTimeString() : DASH);
          if (event.time) {
            time.setAttribute("datetime", event.time);
            time.title = formatAbsoluteTime(event.time);
          }
          var badge = createStatusBadge();
          updateStatusBadge(badge, event.new_status);
          item.appendChild(time);
          item.appendChild(badge);
          item.appendChild(el("span", "timeline-text", describeEvent(event)));
          fragment.appendChild(item);
        }
        nodes.timeline.textContent = "";
        nodes.timeline.appendChild(fragment);
      }
    };
  }

  /* ======================================================================
   * 6. Controller
   * ==================================================================== */

  var CLOCK_TICK_MS = 1000; // "last seen … ago", "updated … ago", "retrying in …"
  var DEFAULT_POLL = {
    training_ms: 3000,
    between_rounds_ms: 8000,
    ended_ms: 30000,
    hidden_factor: 4,
    retry_base_ms: 2000,
    retry_max_ms: 60000
  };

  function pollSettings(config) {
    var poll = {};
    var given = config.poll || {};
    Object.keys(DEFAULT_POLL).forEach(function (key) {
      poll[key] = isNumber(given[key]) && given[key] > 0 ? given[key] : DEFAULT_POLL[key];
    });
    return poll;
  }

  function createDashboard(root, config) {
    var poll = pollSettings(config);
    var loginUrl = config.login_url || root.dataset.loginUrl || "/accounts/login/";
    var api = createApi({ loginUrl: loginUrl });

    var notices = {
      connection: root.querySelector("#notice-connection"),
      staleText: root.querySelector('[data-notice="stale-text"]'),
      retryNow: root.querySelector('[data-notice="retry-now"]'),
      notFound: root.querySelector("#notice-not-found"),
      action: root.querySelector("#notice-action"),
      liveState: root.querySelector('[data-job="live-state"]')
    };
    var stopForm = root.querySelector("#stop-job-form");
    var stopButton = root.querySelector("#stop-job-button");

    var state = {
      clients: new Map(),     // id → last client object from the API
      selectedId: parseClientHash(window.location.hash),
      detailKey: null,        // what the chart and timeline show: see detailKey()
      detailSeq: 0,           // guards against out-of-order detail answers
      timer: null,
      nextPollAt: null,       // Date.now() of the next scheduled poll
      inFlight: false,
      failures: 0,
      finished: false,        // job reached a terminal status
      halted: false,          // job not found / session gone: no more polling
      refreshAgain: false,    // a refresh was asked for while one was in flight
      loadedOnce: false,
      updatedAt: null,        // Date.now() of the last answer (200 or 304)
      revealed: false         // scrolled the #client_<id> row into view once
    };

    var jobView = createJobView(root);
    var overview = createOverviewView(root);
    var clientList = createClientListView(root, function (id) { selectClient(id, true); });
    var detail = createDetailView(root);

    /* ---------- errors ---------- */

    function redirectToLogin() {
      state.halted = true;
      clearTimer();
      var here = window.location.pathname + window.location.search + window.location.hash;
      var sep = loginUrl.indexOf("?") === -1 ? "?" : "&";
      window.location.assign(loginUrl + sep + "next=" + encodeURIComponent(here));
    }

    function showJobNotFound() {
      state.halted = true;
      clearTimer();
      setHidden(notices.notFound, false);
      setHidden(notices.connection, true);
      jobView.hideActions();
      setText(notices.liveState, "Live updates stopped.");
      root.dataset.pollMode = "halted";
      root.dataset.pollInterval = "";
    }

    function showActionError(message) {
      setText(notices.action.querySelector('[data-notice="text"]'), message);
      setHidden(notices.action, false);
    }

    /* ---------- selection ---------- */

    function selectClient(id, updateHash) {
      id = id == null ? null : String(id);
      var changed = id !== state.selectedId;
      state.selectedId = id;
      if (updateHash && id !== null && window.location.hash !== clientHash(id)) {
        window.location.hash = clientHash(id); // hashchange → selectClient again, which is a no-op
      }
      if (changed) {
        state.detailKey = null;
        state.detailSeq++;
        detail.clearPerformance();
      }
      renderSelection();
    }

    function renderSelection() {
      clientList.markSelected(state.selectedId);
      var client = state.selectedId === null ? null : state.clients.get(state.selectedId);
      if (!client) {
        var text = null; // the default "Select a client…" text
        if (state.selectedId !== null) {
          text = state.loadedOnce
            ? "Client " + state.selectedId + " is not part of this job (yet)."
            : "Loading client " + state.selectedId + "…";
        }
        detail.showPlaceholder(text);
        return;
      }
      detail.render(client, api.now());
      maybeLoadDetail(client);
    }

    /* ---------- performance history and timeline ---------- */

    function detailKey(client) {
      // Something the history or the timeline shows has changed: a round, metrics, a status.
      return [client.id, client.current_round, client.status, client.status_reason,
        client.accuracy, client.loss].join("|");
    }

    function maybeLoadDetail(client) {
      var key = detailKey(client);
      if (key === state.detailKey) return;
      if (state.detailKey === null) {
        detail.setChartStatus("Loading performance…");
        detail.setTimelineStatus("Loading events…");
      }
      state.detailKey = key;
      var seq = ++state.detailSeq;
      var id = String(client.id);
      var current = function () { return seq === state.detailSeq && id === state.selectedId; };
      var failed = function (err, show) {
        if (!current()) return;
        if (err.status === 401) return redirectToLogin();
        state.detailKey = null; // try again on the next poll
        show(err);
      };
      api.get(performanceUrl(config.performance_url_template, id)).then(
        function (body) { if (current()) detail.setPerformance(body.performance_data); },
        function (err) {
          failed(err, function () {
            detail.setChartStatus(err.status === 404
              ? "No performance data for this client."
              : "Could not load performance data — retrying.");
          });
        }
      );
      if (!config.events_url_template) return;
      api.get(performanceUrl(config.events_url_template, id)).then(
        function (body) { if (current()) detail.setTimeline(body.events, body.truncated); },
        function (err) {
          failed(err, function () {
            detail.setTimelineStatus(err.status === 404
              ? "No events for this client."
              : "Could not load the events — retrying.");
          });
        }
      );
    }

    /* ---------- polling ---------- */

    function clearTimer() {
      if (state.timer !== null) {
        clearTimeout(state.timer);
        state.timer = null;
      }
      state.nextPollAt = null;
    }

    /** Why we poll at the pace we do: retrying, ended, training or between_rounds. */
    function pollMode() {
      if (state.failures > 0) return "retrying";
      if (state.finished) return "ended";
      var training = false;
      state.clients.forEach(function (c) {
        if (TRAINING_CLIENT_STATUSES.indexOf(c.status) !== -1) training = true;
      });
      return training ? "training" : "between_rounds";
    }

    function pollDelay(mode) {
      if (mode === "retrying") {
        return Math.min(poll.retry_max_ms, poll.retry_base_ms * Math.pow(2, state.failures - 1));
      }
      var delay = mode === "training" ? poll.training_ms
        : mode === "ended" ? poll.ended_ms : poll.between_rounds_ms;
      return document.hidden ? delay * poll.hidden_factor : delay;
    }

    function scheduleNext() {
      clearTimer();
      if (state.halted) return;
      var mode = pollMode();
      var delay = pollDelay(mode);
      root.dataset.pollMode = mode;
      root.dataset.pollInterval = String(delay);
      state.nextPollAt = Date.now() + delay;
      state.timer = setTimeout(function () {
        state.timer = null;
        refresh();
      }, delay);
      renderFreshness();
    }

    function refresh() {
      if (state.halted) return Promise.resolve();
      if (state.inFlight) {
        state.refreshAgain = true;
        return Promise.resolve();
      }
      state.inFlight = true;
      clearTimer();
      return Promise.all([api.getSnapshot(config.clients_url), api.getSnapshot(config.job_url)])
        .then(function (answers) {
          var recovered = state.failures > 0;
          state.failures = 0;
          state.updatedAt = Date.now();
          setHidden(notices.connection, true);
          // A 304 keeps the view: only what changed is rendered again.
          if (answers[1].changed || !state.loadedOnce || recovered) renderJob(answers[1].body.job || {});
          if (answers[0].changed || !state.loadedOnce || recovered) renderClients(answers[0].body);
          state.loadedOnce = true;
        })
        .catch(function (err) {
          if (err && err.status === 401) return redirectToLogin();
          if (err && err.status === 404) return showJobNotFound();
          state.failures++;
          setHidden(notices.connection, false);
          if (!(err instanceof ApiError) && window.console) window.console.error(err);
        })
        .then(function () {
          state.inFlight = false;
          if (state.refreshAgain && !state.halted) {
            state.refreshAgain = false;
            refresh();
          } else {
            scheduleNext();
          }
        });
    }

    function secondsUntil(ms) {
      return Math.max(0, Math.ceil((ms - Date.now()) / 1000));
    }

    /** "Live · updated 2 s ago" and the stale banner's countdown. */
    function renderFreshness() {
      if (state.halted) return;
      var updated = state.updatedAt === null ? null
        : "updated " + formatRelativeTime(new Date(state.updatedAt).toISOString(), Date.now());
      if (state.failures > 0) {
        var retry = state.inFlight || state.nextPollAt === null
          ? "retrying now…" : "retrying in " + secondsUntil(state.nextPollAt) + " s";
        setText(notices.staleText, "Connection to the server lost — " + retry +
          (updated ? " (data " + updated.replace("updated ", "from ") + ")" : ""));
        setText(notices.liveState, updated ? "Offline · last " + updated : "Offline");
      } else if (updated) {
        setText(notices.liveState, (state.finished ? "Job ended · " : "Live · ") + updated);
      }
    }

    function renderJob(job) {
      jobView.render(job);
      state.finished = isTerminalJobStatus(job.status);
    }

    function renderClients(body) {
      var clients = Array.isArray(body.clients) ? body.clients : [];
      state.clients = new Map(clients.map(function (c) { return [String(c.id), c]; }));
      overview.render(body.overview_stats, clients);
      clientList.render(clients, api.now());
      var first = !state.revealed && state.selectedId !== null && state.clients.has(state.selectedId);
      renderSelection();
      if (first) {
        state.revealed = true;
        clientList.reveal(state.selectedId);
      }
    }

    /* ---------- stop job ---------- */

    function csrfToken() {
      var input = stopForm && stopForm.querySelector('input[name="csrfmiddlewaretoken"]');
      return readCookie("csrftoken") || (input ? input.value : "");
    }

    function stopJob(event) {
      event.preventDefault();
      var jobName = root.querySelector('[data-job="name"]').textContent;
      if (!window.confirm("Stop the training job “" + jobName + "”? Clients will stop after their current step.")) {
        return;
      }
      stopButton.disabled = true;
      setText(stopButton, "Stopping…");
      setHidden(notices.action, true);
      api.post(config.stop_url, csrfToken())
        .then(
          function () { return refresh(); },
          function (err) {
            if (err.status === 401) return redirectToLogin();
            showActionError("Could not stop the job: " + err.message);
          }
        )
        .then(function () {
          stopButton.disabled = false;
          setText(stopButton, "Stop job");
        });
    }

    /* ---------- wiring ---------- */

    function start() {
      if (stopForm) stopForm.addEventListener("submit", stopJob);
      var close = notices.action.querySelector('[data-notice="close"]');
      if (close) close.addEventListener("click", function () { setHidden(notices.action, true); });
      if (notices.retryNow) notices.retryNow.addEventListener("click", function () { refresh(); });

      window.addEventListener("hashchange", function () {
        var id = parseClientHash(window.location.hash);
        if (id !== state.selectedId) selectClient(id, false);
        if (id !== null) clientList.reveal(id);
      });

      // Hidden tab: the next polls come slower; visible again: catch up at once (a 304 is cheap).
      document.addEventListener("visibilitychange", function () {
        if (state.halted || state.inFlight) return;
        if (document.hidden) scheduleNext();
        else refresh();
      });

      window.setInterval(function () {
        if (document.hidden) return;
        var now = api.now();
        clientList.tick(now);
        renderFreshness();
        if (state.selectedId === null) return;
        var client = state.clients.get(state.selectedId);
        if (client) detail.renderLastSeen(client, now);
      }, CLOCK_TICK_MS);

      renderSelection();
      refresh();
    }

    return { start: start, refresh: refresh, selectClient: selectClient, state: state };
  }

  /* ======================================================================
   * Boot
   * ==================================================================== */

  function boot() {
    var root = document.getElementById("dashboard");
    var configNode = document.getElementById("dashboard-config");
    if (!root || !configNode) return;
    var config;
    try {
      config = JSON.parse(configNode.textContent);
    } catch (e) {
      if (window.console) window.console.error("dashboard-config is not valid JSON", e);
      return;
    }
    window.fedtrackDashboard = createDashboard(root, config);
    window.fedtrackDashboard.start();
  }

  // Pure helpers, exported for tests run under Node (no DOM there).
  var helpers = {
    statusInfo: statusInfo,
    isTerminalJobStatus: isTerminalJobStatus,
    formatPercent: formatPercent,
    toPercent: toPercent,
    formatLoss: formatLoss,
    formatSeconds: formatSeconds,
    formatRound: formatRound,
    formatAddress: formatAddress,
    formatRelativeTime: formatRelativeTime,
    formatReason: formatReason,
    compareClients: compareClients,
    matchesFilter: matchesFilter,
    describeEvent: describeEvent,
    clientHash: clientHash,
    parseClientHash: parseClientHash,
    performanceUrl: performanceUrl
  };

  if (typeof module === "object" && module.exports) {
    module.exports = helpers;
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", boot);
  } else {
    boot();
  }
})();
