/*
 * The top of the page: the job's header (name, status, error, stop and download buttons) and
 * the overview cards. The cards' figures are the server's `overview_stats`, shown as sent.
 */
import {
  DASH, formatAccuracyHint, formatCount, formatPercent, formatRound, isNumber
} from "./format.js";
import {
  createStatusBadge, setHidden, setProgress, setText, toggleClass, updateStatusBadge
} from "./dom.js";
import { isStoppableJobStatus } from "./statuses.js";

/**
 * What the header says about how the job ended: a stop is the user's choice, told neutrally
 * ("Stopped by alice at 16:40:12", from the job's reason "stopped by alice" and its end);
 * anything else in error_message is an error. `formatTime` turns an ISO time into text.
 */
export function jobNotice(job, formatTime = (iso) => new Date(iso).toLocaleString()) {
  if (job.status === "stopped") {
    const who = job.error_message || "stopped";
    const when = job.finished_at ? " at " + formatTime(job.finished_at) : "";
    return { error: null, stopped: who.charAt(0).toUpperCase() + who.slice(1) + when };
  }
  return { error: job.error_message || null, stopped: null };
}

export function createJobView(root) {
  const nodes = {
    name: root.querySelector('[data-job="name"]'),
    badgeSlot: root.querySelector('[data-job="status-badge"]'),
    error: root.querySelector('[data-job="error"]'),
    errorBox: root.querySelector("#job-error"),
    stopped: root.querySelector('[data-job="stopped"]'),
    stoppedBox: root.querySelector("#job-stopped"),
    round: root.querySelector('[data-stat="round"]'),
    progress: root.querySelector('[data-stat="round-progress"]'),
    stopForm: root.querySelector("#stop-job-form"),
    download: root.querySelector("#download-model")
  };
  // Take over the server-rendered badge, so the first poll changes nothing it got right.
  let badge = nodes.badgeSlot.querySelector(".status-badge");
  if (!badge || badge.lastChild.nodeType !== Node.TEXT_NODE) {
    badge = createStatusBadge();
    nodes.badgeSlot.replaceChildren(badge);
  }

  return {
    render(job) {
      setText(nodes.name, job.name || "Job " + job.id);
      updateStatusBadge(badge, job.status);
      setText(nodes.round, formatRound(job.current_round, job.total_rounds));
      setProgress(nodes.progress, job.current_round, job.total_rounds);
      const notice = jobNotice(job);
      setText(nodes.error, notice.error || "");
      setHidden(nodes.errorBox, !notice.error);
      setText(nodes.stopped, notice.stopped || "");
      setHidden(nodes.stoppedBox, !notice.stopped);
      setHidden(nodes.stopForm, !isStoppableJobStatus(job.status));
      setHidden(nodes.download, !(job.status === "completed" && job.model_available !== false));
    },
    hideActions() {
      setHidden(nodes.stopForm, true);
      setHidden(nodes.download, true);
    }
  };
}

/** The cards: total, active, warnings, accuracy, health, stragglers, samples. */
export function createOverviewView(root) {
  const stat = (key) => root.querySelector(`[data-stat="${key}"]`);
  const nodes = {
    total: stat("total"),
    active: stat("active"),
    warning: stat("warning"),
    accuracy: stat("accuracy"),
    accuracyHint: stat("accuracy-hint"),
    health: stat("health"),
    healthProgress: stat("health-progress"),
    stragglers: stat("stragglers"),
    samples: stat("samples")
  };

  return {
    /** `clients` only tells a 0% accuracy from none reported yet (both average to 0). */
    render(stats, clients) {
      const anyAccuracy = clients.some((c) => isNumber(c.accuracy));
      const health = Math.round(stats.federation_health * 100);
      setText(nodes.total, String(stats.total_clients));
      setText(nodes.active, String(stats.active_clients));
      setText(nodes.warning, String(stats.warning_clients));
      toggleClass(nodes.warning, "has-warnings", stats.warning_clients > 0);
      setText(nodes.accuracy, anyAccuracy ? formatPercent(stats.avg_accuracy) : DASH);
      setText(nodes.accuracyHint, formatAccuracyHint(stats));
      setText(nodes.health, stats.total_clients ? health + "%" : DASH);
      setProgress(nodes.healthProgress, health, 100);
      setText(nodes.stragglers, String(stats.stragglers));
      toggleClass(nodes.stragglers, "has-warnings", stats.stragglers > 0);
      setText(nodes.samples, stats.avg_samples > 0 ? formatCount(Math.round(stats.avg_samples)) : DASH);
    }
  };
}
