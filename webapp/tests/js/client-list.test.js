import assert from "node:assert/strict";
import { test } from "node:test";

import { nextRowIndex, roundText } from "../../static/webapp/dashboard/client-list.js";

test("it moves the focus along the rows shown and stops at either end", () => {
  assert.equal(nextRowIndex("ArrowDown", 0, 3), 1);
  assert.equal(nextRowIndex("ArrowDown", 2, 3), 2);
  assert.equal(nextRowIndex("ArrowUp", 1, 3), 0);
  assert.equal(nextRowIndex("ArrowUp", 0, 3), 0);
  assert.equal(nextRowIndex("Home", 2, 3), 0);
  assert.equal(nextRowIndex("End", 0, 3), 2);
});

test("it starts at the first row when no row has the focus", () => {
  assert.equal(nextRowIndex("ArrowDown", -1, 3), 0);
  assert.equal(nextRowIndex("ArrowUp", -1, 3), 0);
});

test("it says which round a training client's figures are from", () => {
  assert.equal(roundText({ current_round: 15, reported_round: 14, accuracy: 0.84 }),
    "Round 15 · acc. from round 14");
  assert.equal(roundText({ current_round: 15, reported_round: 11, accuracy: 0.84 }),
    "Round 15 · acc. from round 11"); // rounds 12–14 missed
});

test("it says only the round when the figures are that round's, or there are none", () => {
  assert.equal(roundText({ current_round: 14, reported_round: 14, accuracy: 0.84 }), "Round 14");
  assert.equal(roundText({ current_round: 1, reported_round: null, accuracy: null }), "Round 1");
  assert.equal(roundText({ current_round: 0, accuracy: null }), "Round 0");
});
