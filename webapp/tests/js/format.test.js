import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DASH, describeEvent, formatAccuracyHint, formatAbsoluteTime, formatAddress, formatCount, formatLoss,
  formatPercent, formatReason, formatRelativeTime, formatRound, formatSeconds, formatStatusLabel, isFlagged, isNumber, toPercent
} from "../../static/webapp/dashboard/format.js";
import { clientStatuses } from "../../static/webapp/dashboard/statuses.js";
import { STATUS_GROUPS } from "./helpers.js";

const NOW = Date.parse("2026-01-10T12:00:00Z");
const comesBack = clientStatuses(STATUS_GROUPS).isUnusable;

test("it prints a missing figure as a dash, never as NaN or null", () => {
  for (const missing of [null, undefined, NaN, Infinity, "0.5"]) {
    assert.equal(isNumber(missing), false);
    assert.equal(formatPercent(missing), DASH);
    assert.equal(formatLoss(missing), DASH);
    assert.equal(formatSeconds(missing), DASH);
    assert.equal(formatCount(missing), DASH);
    assert.equal(toPercent(missing), null); // a gap in the chart's line
  }
});

test("it prints figures with the precision the dashboard shows", () => {
  assert.equal(formatPercent(0.85), "85.0%");
  assert.equal(formatPercent(0), "0.0%");
  assert.equal(toPercent(0.12345), 12.35);
  assert.equal(formatLoss(0.123456), "0.1235");
  assert.equal(formatSeconds(2.5), "2.50 s");
  assert.equal(formatCount(80), "80");
});

test("it prints the round, counting a job not started as round 0", () => {
  assert.equal(formatRound(3, 10), "Round 3 / 10");
  assert.equal(formatRound(null, 5), "Round 0 / 5");
});

test("it prints an address with IPv6 hosts in brackets", () => {
  assert.equal(formatAddress("10.0.0.5", 5000), "10.0.0.5:5000");
  assert.equal(formatAddress("::1", 5000), "[::1]:5000");
  assert.equal(formatAddress("10.0.0.5", null), "10.0.0.5");
  assert.equal(formatAddress("", 5000), DASH);
});

test("it says how long ago in the largest whole unit", () => {
  const ago = (seconds) => new Date(NOW - seconds * 1000).toISOString();
  assert.equal(formatRelativeTime(null, NOW), "never");
  assert.equal(formatRelativeTime("not a time", NOW), DASH);
  assert.equal(formatRelativeTime(ago(0), NOW), "just now");
  assert.equal(formatRelativeTime(ago(-5), NOW), "just now"); // a clock slightly ahead
  assert.equal(formatRelativeTime(ago(4), NOW), "4 s ago");
  assert.equal(formatRelativeTime(ago(59), NOW), "59 s ago");
  assert.equal(formatRelativeTime(ago(60), NOW), "1 min ago");
  assert.equal(formatRelativeTime(ago(2 * 3600 + 59), NOW), "2 h ago");
  assert.equal(formatRelativeTime(ago(5 * 86400), NOW), "5 d ago");
});

test("it leaves the tooltip empty for a time it cannot read", () => {
  assert.equal(formatAbsoluteTime(null), "");
  assert.equal(formatAbsoluteTime("garbage"), "");
  assert.notEqual(formatAbsoluteTime("2026-01-10T12:00:00Z"), "");
});

test("it counts down to a straggler's expected reply, then says it is overdue", () => {
  const slow = { status_reason: "slower than its last round", expected_at: "2026-01-10T12:00:07Z" };
  assert.equal(formatReason(slow, NOW), "slower than its last round — expected in about 7 s");
  assert.equal(formatReason(slow, NOW + 8000), "slower than its last round — overdue");
  assert.equal(formatReason({ status_reason: "node left" }, NOW), "node left");
  assert.equal(formatReason({ expected_at: null }, NOW), "");
});

test("it tells each event as a sentence, with its round and message", () => {
  const cases = [
    [{ old_status: "pending", new_status: "connected" }, "Joined"],
    [{ old_status: "offline", new_status: "connected" }, "Rejoined"],
    [{ old_status: "error", new_status: "connected" }, "Rejoined"],
    [{ old_status: "reported", new_status: "connected" }, "Joined"],
    [{ new_status: "training", round: 2 }, "Started round 2"],
    [{ new_status: "training", round: 0 }, "Started training"],
    [{ new_status: "reported", round: 3 }, "Reported round 3"],
    [{ new_status: "completed" }, "Completed the job"],
    [{ new_status: "error", round: 1, message: "accuracy=1.7" }, "Error in round 1: accuracy=1.7"],
    [{ new_status: "offline", round: 4 }, "Dropped out in round 4"],
    [{ new_status: "offline" }, "Dropped out"],
    [{ new_status: "slow", round: 2 }, "Straggling in round 2"],
    [{ old_status: "reported", new_status: "mystery" }, "Reported → Mystery"],
    [{ old_status: "training", new_status: "training", round: 2, message: "two SuperNodes" },
      "Warning in round 2: two SuperNodes"],
    [{ old_status: "connected", new_status: "connected", message: "two SuperNodes" },
      "Warning: two SuperNodes"]
  ];
  for (const [event, sentence] of cases) assert.equal(describeEvent(event, comesBack), sentence);
});

test("it flags the row of a site known down while its client still shows training", () => {
  const statuses = clientStatuses(STATUS_GROUPS);
  const down = { status: "training", site_down: true };
  assert.equal(formatStatusLabel(down), "Training · site down");
  assert.equal(isFlagged(down, statuses), true);
  assert.equal(formatStatusLabel({ status: "training", site_down: false }), "Training");
  assert.equal(isFlagged({ status: "training" }, statuses), false);
  assert.equal(isFlagged({ status: "dropped" }, statuses), true);
});

test("it names a problem at a site not down and flags its row, without calling it down", () => {
  const statuses = clientStatuses(STATUS_GROUPS);
  const twoNodes = { status: "training", site_down: false, site_problem: "two SuperNodes answer" };
  assert.equal(formatStatusLabel(twoNodes), "Training · site problem");
  assert.equal(isFlagged(twoNodes, statuses), true);
  assert.equal(formatStatusLabel({ status: "training", site_problem: null }), "Training");
});

test("it says which round the average accuracy is from", () => {
  assert.equal(formatAccuracyHint({ accuracy_round: 6, accuracy_clients: 2 }), "round 6, 2 clients");
  assert.equal(formatAccuracyHint({ accuracy_round: 1, accuracy_clients: 1 }), "round 1, 1 client");
  assert.equal(formatAccuracyHint({ accuracy_round: null }), "the latest round's reporters");
});
