/*
 * Pure formatting: numbers, times and sentences as the dashboard prints them. No DOM, so
 * every function here runs under `node --test` as it runs in the page.
 */
import { statusInfo } from "./statuses.js";

export const DASH = "—";

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** 0.85 → "85.0%"; null/undefined → "—". */
export function formatPercent(fraction) {
  return isNumber(fraction) ? (fraction * 100).toFixed(1) + "%" : DASH;
}

/** Fraction → percentage for a chart, to two decimals; a missing value stays null (a gap). */
export function toPercent(fraction) {
  return isNumber(fraction) ? Math.round(fraction * 10000) / 100 : null;
}

export function formatLoss(loss) {
  return isNumber(loss) ? loss.toFixed(4) : DASH;
}

export function formatSeconds(seconds) {
  return isNumber(seconds) ? seconds.toFixed(2) + " s" : DASH;
}

export function formatCount(n) {
  return isNumber(n) ? n.toLocaleString() : DASH;
}

function formatWholeSeconds(seconds) {
  return isNumber(seconds) ? Math.max(0, Math.round(seconds)) + " s" : DASH;
}

/**
 * A client's status reason, with the straggler's expected reply time when the API gives
 * one. `expected_at` is an absolute time, so the countdown stays right between polls and
 * across 304s.
 */
export function formatReason(client, nowMs) {
  const parts = [];
  if (client.status_reason) parts.push(String(client.status_reason));
  const expected = client.expected_at ? Date.parse(client.expected_at) : NaN;
  if (!Number.isNaN(expected)) {
    const left = (expected - nowMs) / 1000;
    parts.push(left > 0 ? "expected in about " + formatWholeSeconds(left) : "overdue");
  }
  return parts.join(" — ");
}

/**
 * A client's status as its row shows it: a site known down (its API refuses, its SuperNode
 * stopped) says so beside the status, before the server calls it offline; any other site
 * problem (a second SuperNode answering as the site, an API slow to answer) is named too,
 * its text in the row's reason.
 */
export function formatStatusLabel(client) {
  const label = statusInfo(client.status).label;
  if (client.site_down === true) return label + " · site down";
  return client.site_problem ? label + " · site problem" : label;
}

/** Whether a client's row is flagged: a problem status, or a problem at its site. */
export function isFlagged(client, statuses) {
  return statuses.isWarning(client.status) || client.site_down === true || !!client.site_problem;
}

/** The accuracy card's hint: which round its average is from, over how many clients. */
export function formatAccuracyHint(stats) {
  const round = stats && stats.accuracy_round;
  if (!isNumber(round)) return "the latest round's reporters";
  const n = isNumber(stats.accuracy_clients) ? stats.accuracy_clients : 0;
  return `round ${round}, ${n} client${n === 1 ? "" : "s"}`;
}

export function formatRound(current, total) {
  return "Round " + (isNumber(current) ? current : 0) + " / " + (isNumber(total) ? total : 0);
}

/** "10.0.0.5:5000", "[::1]:5000" (IPv6 in brackets), the host alone without a port. */
export function formatAddress(ip, port) {
  if (!ip) return DASH;
  const host = String(ip).includes(":") ? "[" + ip + "]" : String(ip);
  return port == null || port === "" ? host : host + ":" + port;
}

/** ISO-8601 timestamp → "4 s ago" / "3 min ago" / "2 h ago" / "5 d ago"; none → "never". */
export function formatRelativeTime(iso, nowMs) {
  if (!iso) return "never";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return DASH;
  const seconds = Math.round((nowMs - then) / 1000);
  if (seconds < 1) return "just now";
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
  return Math.floor(seconds / 86400) + " d ago";
}

/** The browser's local date and time, for tooltips; "" when there is no valid time. */
export function formatAbsoluteTime(iso) {
  const then = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(then) ? "" : new Date(then).toLocaleString();
}

/**
 * One timeline event as a sentence: joined, started round N, reported, dropped out, …
 * `comesBackFrom(status)` says whether leaving that status to `connected` is a rejoin.
 */
export function describeEvent(event, comesBackFrom) {
  const round = isNumber(event.round) && event.round > 0 ? " round " + event.round : "";
  const inRound = round ? " in" + round : "";
  let text;
  // An event that leaves the status as it was is a warning on the timeline (two SuperNodes
  // answering as one site).
  if (event.old_status && event.old_status === event.new_status) text = "Warning" + inRound;
  else switch (event.new_status) {
    case "connected": text = comesBackFrom(event.old_status) ? "Rejoined" : "Joined"; break;
    case "training": text = "Started" + (round || " training"); break;
    case "reported": text = "Reported" + round; break;
    case "evaluated": text = "Evaluated" + round; break;
    case "completed": text = "Completed the job"; break;
    case "stopped": text = "Stopped"; break;
    case "error": text = "Error" + inRound; break;
    case "offline": text = "Dropped out" + inRound; break;
    case "slow": text = "Straggling" + inRound; break;
    default:
      text = statusInfo(event.old_status).label + " → " + statusInfo(event.new_status).label;
  }
  return event.message ? text + ": " + String(event.message) : text;
}
