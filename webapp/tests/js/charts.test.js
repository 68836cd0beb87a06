import assert from "node:assert/strict";
import { test } from "node:test";

import { describeLatestRound, lineSeries, performanceSeries } from "../../static/webapp/dashboard/charts.js";

test("it turns a performance answer into the charts' series, gaps as null", () => {
  const series = performanceSeries({
    labels: ["Round 1", "Round 2", "Round 3"],
    accuracy: [0.75, null, 0.8123],
    loss: [0.6, 0.5, "x"],
    train_loss: [0.7, null, 0.4],
    response_time: [2.5, 3, null]
  });
  assert.deepEqual(series, {
    labels: ["Round 1", "Round 2", "Round 3"],
    accuracy: [75, null, 81.23],
    loss: [0.6, 0.5, null],
    trainLoss: [0.7, null, 0.4],
    responseTime: [2.5, 3, null]
  });
});

test("it draws nothing from an answer without series", () => {
  const empty = { labels: [], accuracy: [], loss: [], trainLoss: [], responseTime: [] };
  assert.deepEqual(performanceSeries(undefined), empty);
  assert.deepEqual(performanceSeries({ labels: "Round 1" }), empty);
  assert.equal(describeLatestRound(empty), null);
});

test("it describes the latest round for screen readers", () => {
  const series = performanceSeries({ labels: ["Round 1", "Round 2"], accuracy: [0.5, null], loss: [0.6, 0.41] });
  assert.equal(describeLatestRound(series),
    "Accuracy and loss per round. Latest, Round 2: accuracy —, loss 0.4100.");
});

test("it leaves a gap for a round the client missed instead of joining its neighbours", () => {
  assert.equal(lineSeries("Accuracy", "y", "#000000", {}).spanGaps, false);
  const series = performanceSeries({
    labels: ["Round 1", "Round 2 (missed)", "Round 3"], accuracy: [0.5, null, 0.6]
  });
  assert.deepEqual(series.accuracy, [50, null, 60]);
});
