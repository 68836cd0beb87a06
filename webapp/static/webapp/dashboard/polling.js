/*
 * How often the dashboard asks the server, and what it says about how fresh its data is.
 *
 * The pace follows what can change: fast while a client trains and through the final round,
 * slower between earlier rounds, slow
 * once the job has ended, all slower still in a hidden tab; after a failure, retries back
 * off exponentially up to a ceiling. The intervals come from the server's settings
 * (dashboard-config `poll`), so tests and deployments tune them without touching this file.
 * Each poll is cheap when nothing changed: the snapshots are conditional GETs (api.js).
 */
import { formatRelativeTime, isNumber } from "./format.js";

const DEFAULT_POLL = {
  training_ms: 3000,
  between_rounds_ms: 8000,
  ended_ms: 30000,
  hidden_factor: 4,
  retry_base_ms: 2000,
  retry_max_ms: 60000
};

/** The server's poll settings, each missing or invalid one replaced by its default. */
export function pollSettings(given) {
  const settings = {};
  for (const [key, fallback] of Object.entries(DEFAULT_POLL)) {
    const value = given ? given[key] : undefined;
    settings[key] = isNumber(value) && value > 0 ? value : fallback;
  }
  return settings;
}

/**
 * Why the next poll comes when it does: retrying, ended, training or between_rounds. The
 * final round keeps the training pace even once every client has reported: the job ends
 * right after it, and the page should say so within one fast poll, not a slow one.
 */
export function pollMode({ failures, finished, training, finalRound = false }) {
  if (failures > 0) return "retrying";
  if (finished) return "ended";
  return training || finalRound ? "training" : "between_rounds";
}

/** The job has reached its last round (and has not ended): its end is the next news. */
export function inFinalRound(job) {
  return Boolean(job) && isNumber(job.current_round) && isNumber(job.total_rounds)
    && job.total_rounds > 0 && job.current_round >= job.total_rounds;
}

/** Milliseconds until the next poll. A retry's back-off ignores visibility: it is a repair. */
export function pollDelay(mode, settings, { failures = 0, hidden = false } = {}) {
  if (mode === "retrying") {
    return Math.min(settings.retry_max_ms, settings.retry_base_ms * 2 ** (failures - 1));
  }
  const delay = mode === "training" ? settings.training_ms
    : mode === "ended" ? settings.ended_ms : settings.between_rounds_ms;
  return hidden ? delay * settings.hidden_factor : delay;
}

/**
 * The header's live state ("Live · updated 2 s ago") and, while the server cannot be
 * reached, the banner's text with its countdown to the next try. Times in ms (local clock:
 * both are moments this page saw).
 */
export function freshnessText({ failures, retryingNow, nextPollAt, updatedAt, finished, now }) {
  const updated = updatedAt === null ? null
    : "updated " + formatRelativeTime(new Date(updatedAt).toISOString(), now);
  if (failures > 0) {
    const retry = retryingNow || nextPollAt === null
      ? "retrying now…"
      : "retrying in " + Math.max(0, Math.ceil((nextPollAt - now) / 1000)) + " s";
    const since = updated ? " (data " + updated.replace("updated ", "from ") + ")" : "";
    return {
      liveState: updated ? "Offline · last " + updated : "Offline",
      staleText: "Connection to the server lost — " + retry + since
    };
  }
  if (!updated) return { liveState: null, staleText: null };
  return { liveState: (finished ? "Job ended · " : "Live · ") + updated, staleText: null };
}

/**
 * Runs `load` (one poll: resolves when the view is up to date, rejects when it could not
 * be) again and again at the pace of pollMode. Owns the timer and the failure count, so a
 * poll asked for while one is running (a click on "Retry now", the tab coming back) runs
 * once that one ends instead of alongside it.
 *
 *   describe(): {finished, training} — what the view shows now, which sets the pace
 *   onFailure(error): shows the failure; false when polling must stop for good
 *   onSchedule(mode, delayMs): after every poll and every change of pace
 */
export class Poller {
  constructor({ settings, load, describe, onFailure, onSchedule, isHidden, clock = Date,
    timers = globalThis }) {
    Object.assign(this, { settings, load, describe, onFailure, onSchedule, isHidden, clock, timers });
    this.failures = 0;
    this.inFlight = false;
    this.halted = false;
    this.updatedAt = null; // when the last poll succeeded (a 304 counts)
    this.nextPollAt = null;
    this.timer = null;
    this.again = false;
  }

  async refresh() {
    if (this.halted) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    this.clearTimer();
    try {
      await this.load({ recovered: this.failures > 0 });
      this.failures = 0;
      this.updatedAt = this.clock.now();
    } catch (error) {
      if (this.onFailure(error)) this.failures++;
      else this.halt();
    }
    this.inFlight = false;
    if (this.again && !this.halted) {
      this.again = false;
      await this.refresh();
    } else {
      this.schedule();
    }
  }

  /** Plan the next poll at the pace of what the view shows now. */
  schedule() {
    this.clearTimer();
    if (this.halted) return;
    const mode = this.mode();
    const delay = pollDelay(mode, this.settings, { failures: this.failures, hidden: this.isHidden() });
    this.nextPollAt = this.clock.now() + delay;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, delay);
    this.onSchedule(mode, delay);
  }

  mode() {
    return pollMode({ failures: this.failures, ...this.describe() });
  }

  halt() {
    this.halted = true;
    this.clearTimer();
  }

  clearTimer() {
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    this.nextPollAt = null;
  }

  freshness(finished) {
    return freshnessText({
      failures: this.failures,
      retryingNow: this.inFlight,
      nextPollAt: this.nextPollAt,
      updatedAt: this.updatedAt,
      finished,
      now: this.clock.now()
    });
  }
}
