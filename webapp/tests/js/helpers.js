// What the Node tests share: the status groups as the server sends them (a Python test,
// test_dashboard_config.py, keeps this copy equal to the server's).
import { readFileSync } from "node:fs";

export const STATUS_GROUPS = JSON.parse(
  readFileSync(new URL("./status_groups.json", import.meta.url), "utf8")
);
