/*
 * The selected client's card: its fields, its two charts and its event timeline.
 */
import {
  DASH, describeEvent, formatAbsoluteTime, formatAddress, formatCount, formatLoss,
  formatPercent, formatReason, formatRelativeTime, formatSeconds, isNumber
} from "./format.js";
import {
  createStatusBadge, el, setAttr, setHidden, setText, updateStatusBadge
} from "./dom.js";
import { statusInfo } from "./statuses.js";
import {
  clearChart, createPerformanceChart, createResponseTimeChart, describeLatestRound, drawSeries,
  performanceSeries
} from "./charts.js";
import { figuresRound } from "./client-list.js";

/** statuses: clientStatuses(groups), for the timeline's "Rejoined". */
export function createDetailView(root, statuses) {
  const card = root.querySelector("#client-detail");
  const q = (selector) => card.querySelector(selector);
  const nodes = {
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
  const fields = {};
  for (const node of card.querySelectorAll("[data-field]")) fields[node.dataset.field] = node;
  const defaultPlaceholder = nodes.placeholder.textContent.trim();
  const defaultCanvasLabel = nodes.canvas ? nodes.canvas.getAttribute("aria-label") : "";
  const badge = createStatusBadge();
  // Created on first use: the canvases are hidden until a client is selected, and Chart.js
  // measures its canvas when it starts.
  let performanceChart = null;
  let responseChart = null;
  let timelineKey = null; // what the timeline shows, so an unchanged list is not rebuilt

  function ensureCharts() {
    if (!performanceChart) performanceChart = createPerformanceChart(nodes.canvas);
    if (!responseChart) responseChart = createResponseTimeChart(nodes.responseCanvas);
    return performanceChart !== null;
  }

  function timelineItem(event) {
    const item = el("li", "timeline-item");
    item.dataset.status = String(event.new_status);
    const time = el("time", "timeline-time", event.time ? new Date(event.time).toLocaleTimeString() : DASH);
    if (event.time) {
      time.setAttribute("datetime", event.time);
      time.title = formatAbsoluteTime(event.time);
    }
    const eventBadge = createStatusBadge();
    updateStatusBadge(eventBadge, event.new_status);
    item.append(time, eventBadge, el("span", "timeline-text", describeEvent(event, statuses.isUnusable)));
    return item;
  }

  return {
    showPlaceholder(text) {
      setText(nodes.title, "Client details");
      badge.remove();
      setText(nodes.placeholder, text || defaultPlaceholder);
      setHidden(nodes.placeholder, false);
      setHidden(nodes.body, true);
    },

    render(client, nowMs) {
      setText(nodes.title, client.name || "Client " + client.id);
      if (!badge.parentNode) nodes.badgeSlot.appendChild(badge);
      updateStatusBadge(badge, client.status);
      setHidden(nodes.placeholder, true);
      setHidden(nodes.body, false);

      setText(fields.address, formatAddress(client.ip, client.port));
      setText(fields.dataset, client.dataset_name || DASH);
      setText(fields.id, String(client.id));
      setText(fields.status, statusInfo(client.status).label);
      setText(fields.status_reason, formatReason(client, nowMs));
      setText(fields.round, isNumber(client.current_round) ? String(client.current_round) : DASH);
      const from = figuresRound(client);
      setText(fields.accuracy, formatPercent(client.accuracy) + (from === null ? "" : ` (round ${from})`));
      setText(fields.loss, formatLoss(client.loss));
      setText(fields.samples, formatCount(client.train_samples) + " / " + formatCount(client.test_samples));
      setText(fields.response_time, formatSeconds(client.response_time));
      this.renderLastSeen(client, nowMs);
      setAttr(fields.last_seen, "title", formatAbsoluteTime(client.last_seen) || null);
    },

    /** The relative "last seen" text alone: kept ticking between polls. */
    renderLastSeen(client, nowMs) {
      setText(fields.last_seen, formatRelativeTime(client.last_seen, nowMs));
    },

    setChartStatus(text) {
      setText(nodes.chartStatus, text || "");
    },

    setPerformance(performance) {
      if (!ensureCharts()) {
        setText(nodes.chartStatus, "The chart library could not be loaded.");
        return;
      }
      const series = performanceSeries(performance);
      drawSeries(performanceChart, responseChart, series);
      const latest = describeLatestRound(series);
      setText(nodes.chartStatus, latest ? "" : "No round has been reported yet.");
      setAttr(nodes.canvas, "aria-label", latest || defaultCanvasLabel);
    },

    /** Forget the previous client's charts and timeline (another client was selected). */
    clearPerformance() {
      clearChart(performanceChart);
      clearChart(responseChart);
      setAttr(nodes.canvas, "aria-label", defaultCanvasLabel);
      timelineKey = null;
      if (nodes.timeline) nodes.timeline.replaceChildren();
    },

    setTimelineStatus(text) {
      setText(nodes.timelineStatus, text || "");
    },

    /** The client's events, newest first; rebuilt only when they changed. */
    setTimeline(events, truncated) {
      if (!nodes.timeline) return;
      const list = Array.isArray(events) ? events : [];
      const last = list[list.length - 1];
      setText(nodes.timelineStatus, list.length
        ? (truncated ? `Showing the latest ${list.length} events.` : "")
        : "No events yet.");
      const key = list.length + "|" + (last ? last.time + last.new_status : "");
      if (key === timelineKey) return;
      timelineKey = key;
      nodes.timeline.replaceChildren(...list.slice().reverse().map(timelineItem));
    }
  };
}
