import assert from "node:assert/strict";
import { test } from "node:test";

import { nextRowIndex } from "../../static/webapp/dashboard/client-list.js";

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
