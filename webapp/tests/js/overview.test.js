import assert from "node:assert/strict";
import { test } from "node:test";

import { jobNotice } from "../../static/webapp/dashboard/overview.js";

const at = (iso) => "T" + iso.slice(11, 19);

test("it tells a job stopped by its user neutrally, with who and when", () => {
  const job = { status: "stopped", error_message: "stopped by alice", finished_at: "2026-12-04T16:40:12+00:00" };
  assert.deepEqual(jobNotice(job, at), { error: null, stopped: "Stopped by alice at T16:40:12" });
});

test("it keeps an older stop's reason and a stop with no end time", () => {
  assert.equal(jobNotice({ status: "stopped", error_message: "stopped by the user", finished_at: null }, at).stopped,
    "Stopped by the user");
  assert.equal(jobNotice({ status: "stopped", error_message: "", finished_at: null }, at).stopped, "Stopped");
});

test("it shows a failure's reason as an error, and nothing when there is none", () => {
  assert.deepEqual(jobNotice({ status: "failed", error_message: "the run ended" }, at),
    { error: "the run ended", stopped: null });
  assert.deepEqual(jobNotice({ status: "running", error_message: "" }, at), { error: null, stopped: null });
});
