import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  clientStatuses, isFinishedJobStatus, isStoppableJobStatus, statusInfo
} from "../../static/webapp/dashboard/statuses.js";
import { STATUS_GROUPS } from "./helpers.js";

const statuses = clientStatuses(STATUS_GROUPS);

test("it has a label and a colour in app.css for every status the server knows", () => {
  const css = readFileSync(new URL("../../static/webapp/app.css", import.meta.url), "utf8");
  for (const status of [...STATUS_GROUPS.all, "running", "failed"]) {
    const { className } = statusInfo(status);
    assert.equal(className, "status-" + status);
    assert.match(css, new RegExp(`\\.${className}\\b`), className);
  }
  assert.deepEqual(statusInfo("slow"), { label: "Slow", className: "status-slow" });
});

test("it keeps an unknown status readable instead of hiding it", () => {
  assert.deepEqual(statusInfo("waiting_for_data"),
    { label: "Waiting for data", className: "status-unknown" });
  assert.deepEqual(statusInfo(null), { label: "Unknown", className: "status-unknown" });
  assert.deepEqual(statusInfo("constructor"),
    { label: "Constructor", className: "status-unknown" });
});

test("it offers problems first in the filter, then what is under way, each status once", () => {
  assert.deepEqual(statuses.filterOrder, [
    "error", "offline", "slow", "dropped", "training", "connected",
    "reported", "completed", "pending", "stopped"
  ]);
});

test("it takes a status the server adds into the filter without a change here", () => {
  const groups = { ...STATUS_GROUPS, all: [...STATUS_GROUPS.all, "quarantined"] };
  assert.equal(clientStatuses(groups).filterOrder.at(-1), "quarantined");
});

test("it answers the groups' questions from the server's lists", () => {
  assert.deepEqual(STATUS_GROUPS.all.filter(statuses.isWarning),
    ["error", "offline", "slow", "dropped"]);
  assert.deepEqual(STATUS_GROUPS.all.filter(statuses.isTraining), ["training", "slow"]);
  const without = clientStatuses({});
  assert.equal(without.isWarning("error"), false);
  assert.deepEqual(without.filterOrder, []);
});

test("it lists problems first, in the server's order, then by name and id", () => {
  const clients = [
    { id: "b", name: "Madrid", status: "connected" },
    { id: "a", name: "madrid", status: "reported" },
    { id: "c", name: "Barcelona", status: "slow" },
    { id: "d", name: "Zaragoza", status: "error" },
    { id: "e", name: "Bilbao", status: "offline" },
    { id: "f", name: "Athens", status: "training" }
  ];
  const ids = clients.slice().sort(statuses.compareClients).map((c) => c.id);
  assert.deepEqual(ids, ["d", "e", "c", "f", "a", "b"]);
});

test("it filters by one status, by problems or not at all", () => {
  const slow = { status: "slow" };
  const done = { status: "completed" };
  assert.equal(statuses.matchesFilter(done, ""), true);
  assert.equal(statuses.matchesFilter(slow, "problems"), true);
  assert.equal(statuses.matchesFilter(done, "problems"), false);
  assert.equal(statuses.matchesFilter(done, "completed"), true);
  assert.equal(statuses.matchesFilter(slow, "completed"), false);
});

test("it polls a finished job slowly and offers to stop only a live one", () => {
  for (const status of ["completed", "failed", "stopped", "error"]) {
    assert.equal(isFinishedJobStatus(status), true, status);
    assert.equal(isStoppableJobStatus(status), false, status);
  }
  for (const status of ["pending", "running"]) {
    assert.equal(isFinishedJobStatus(status), false, status);
    assert.equal(isStoppableJobStatus(status), true, status);
  }
});
