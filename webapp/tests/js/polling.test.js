import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Poller, freshnessText, inFinalRound, pollDelay, pollMode, pollSettings
} from "../../static/webapp/dashboard/polling.js";

const SETTINGS = pollSettings({
  training_ms: 300, between_rounds_ms: 800, ended_ms: 1500, hidden_factor: 4,
  retry_base_ms: 300, retry_max_ms: 1000
});

test("it takes the server's intervals and defaults any missing or invalid one", () => {
  assert.deepEqual(pollSettings({ training_ms: 100, ended_ms: -1, hidden_factor: "x" }), {
    training_ms: 100,
    between_rounds_ms: 8000,
    ended_ms: 30000,
    hidden_factor: 4,
    retry_base_ms: 2000,
    retry_max_ms: 60000
  });
  assert.equal(pollSettings(undefined).training_ms, 3000);
});

test("it polls at the pace of what can change", () => {
  assert.equal(pollMode({ failures: 0, finished: false, training: true }), "training");
  assert.equal(pollMode({ failures: 0, finished: false, training: false }), "between_rounds");
  assert.equal(pollMode({ failures: 0, finished: true, training: true }), "ended");
  assert.equal(pollMode({ failures: 1, finished: true, training: true }), "retrying");
  assert.equal(pollDelay("training", SETTINGS), 300);
  assert.equal(pollDelay("between_rounds", SETTINGS), 800);
  assert.equal(pollDelay("ended", SETTINGS), 1500);
  assert.equal(pollDelay("ended", SETTINGS, { hidden: true }), 6000);
});

test("it keeps the training pace through the final round, so the end shows within one poll", () => {
  assert.equal(pollMode({ failures: 0, finished: false, training: false, finalRound: true }), "training");
  assert.equal(pollMode({ failures: 0, finished: true, training: false, finalRound: true }), "ended");
  assert.equal(inFinalRound({ current_round: 3, total_rounds: 3 }), true);
  assert.equal(inFinalRound({ current_round: 2, total_rounds: 3 }), false);
  assert.equal(inFinalRound({ current_round: 0, total_rounds: 0 }), false);
  assert.equal(inFinalRound(null), false);
});

test("it backs off exponentially after failures, up to the ceiling, hidden or not", () => {
  const delays = [1, 2, 3, 4].map((failures) => pollDelay("retrying", SETTINGS, { failures }));
  assert.deepEqual(delays, [300, 600, 1000, 1000]);
  assert.equal(pollDelay("retrying", SETTINGS, { failures: 2, hidden: true }), 600);
});

test("it says how fresh the data is, and when it retries while offline", () => {
  const now = Date.parse("2026-01-10T12:00:00Z");
  const base = { failures: 0, retryingNow: false, nextPollAt: null, updatedAt: now - 2000, finished: false, now };
  assert.deepEqual(freshnessText({ ...base, updatedAt: null }), { liveState: null, staleText: null });
  assert.deepEqual(freshnessText(base), { liveState: "Live · updated 2 s ago", staleText: null });
  assert.equal(freshnessText({ ...base, finished: true }).liveState, "Job ended · updated 2 s ago");
  assert.deepEqual(freshnessText({ ...base, failures: 1, nextPollAt: now + 2500 }), {
    liveState: "Offline · last updated 2 s ago",
    staleText: "Connection to the server lost — retrying in 3 s (data from 2 s ago)"
  });
  assert.deepEqual(freshnessText({ ...base, failures: 2, retryingNow: true, updatedAt: null }), {
    liveState: "Offline",
    staleText: "Connection to the server lost — retrying now…"
  });
});

/** A Poller on a hand-driven clock and timer; `outcomes` says how each load ends. */
function drivenPoller({ outcomes, view = { finished: false, training: false }, hidden = false }) {
  const clock = { ms: 0, now() { return this.ms; } };
  const pending = []; // [{fn, delay}]
  const timers = {
    setTimeout: (fn, delay) => { pending.push({ fn, delay }); return pending.length; },
    clearTimeout: (id) => { pending[id - 1] = null; }
  };
  const log = [];
  const loads = { running: 0, mostAtOnce: 0 };
  const poller = new Poller({
    settings: SETTINGS,
    load: async ({ recovered }) => {
      log.push(recovered ? "load after failure" : "load");
      loads.running++;
      loads.mostAtOnce = Math.max(loads.mostAtOnce, loads.running);
      await new Promise((resolve) => setImmediate(resolve)); // an answer takes a while
      loads.running--;
      const outcome = outcomes.shift();
      if (outcome !== "ok") throw outcome;
    },
    describe: () => view,
    onFailure: (error) => error !== "gone",
    onSchedule: (mode, delay) => log.push(`${mode} ${delay}`),
    isHidden: () => hidden,
    clock,
    timers
  });
  /** Let the one planned poll run, as its timer would. */
  async function fire() {
    const live = pending.filter(Boolean);
    assert.equal(live.length, 1, "exactly one poll is planned");
    pending.length = 0;
    clock.ms += live[0].delay;
    live[0].fn();
    // until that poll has answered and planned the next one
    while (!pending.some(Boolean) && !poller.halted) await new Promise((r) => setImmediate(r));
  }
  return { poller, log, fire, pending, loads };
}

test("it retries with back-off and redraws everything once the server is back", async () => {
  const { poller, log, fire } = drivenPoller({ outcomes: ["ok", "down", "down", "ok"] });
  await poller.refresh();
  await fire();
  await fire();
  await fire();

  assert.deepEqual(log, [
    "load", "between_rounds 800",
    "load", "retrying 300",
    "load after failure", "retrying 600",
    "load after failure", "between_rounds 800"
  ]);
  assert.equal(poller.failures, 0);
  assert.equal(poller.updatedAt, 800 + 300 + 600);
});

test("it stops for good when a failure says so", async () => {
  const { poller, log, pending } = drivenPoller({ outcomes: ["gone"] });
  await poller.refresh();
  await poller.refresh();

  assert.deepEqual(log, ["load"]);
  assert.equal(poller.halted, true);
  assert.equal(pending.filter(Boolean).length, 0);
});

test("it runs a poll asked for during another one after it, not alongside", async () => {
  const { poller, log, loads } = drivenPoller({ outcomes: ["ok", "ok"] });
  const first = poller.refresh();
  await poller.refresh(); // while the first is in flight
  await poller.refresh();
  await first;

  assert.deepEqual(log, ["load", "load", "between_rounds 800"]);
  assert.equal(loads.mostAtOnce, 1);
});

test("it slows down in a hidden tab and speeds up while clients train", async () => {
  const view = { finished: false, training: true };
  const hiddenTab = drivenPoller({ outcomes: ["ok"], view, hidden: true });
  await hiddenTab.poller.refresh();
  assert.deepEqual(hiddenTab.log, ["load", "training 1200"]);
  assert.equal(hiddenTab.poller.nextPollAt, 1200);
});
