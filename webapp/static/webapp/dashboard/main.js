/*
 * Entry point of client_dashboard.html's live view. The page's configuration is the
 * json_script block #dashboard-config, written by the client_dashboard view:
 *   { job_id, clients_url, job_url, performance_url_template, events_url_template
 *     (per-client URLs with "__CLIENT__" for the id), history_csv_url, stop_url,
 *     model_url, login_url, poll: {training_ms, between_rounds_ms, ended_ms, hidden_factor,
 *     retry_base_ms, retry_max_ms}, status_groups: {all, active, warning, terminal, training} }
 * #dashboard carries the current polling in data-poll-interval (ms) and data-poll-mode.
 *
 * Modules: statuses.js (labels, the server's groups), format.js (pure formatting), urls.js,
 * api.js (requests, ETag/304), polling.js (pace, back-off, freshness), dom.js, overview.js
 * (header and cards), client-list.js, detail.js and charts.js (the selected client),
 * controller.js (ties them together).
 */
import { createDashboard } from "./controller.js";

const root = document.getElementById("dashboard");
const configNode = document.getElementById("dashboard-config");
if (root && configNode) {
  let config = null;
  try {
    config = JSON.parse(configNode.textContent);
  } catch (error) {
    console.error("dashboard-config is not valid JSON", error);
  }
  if (config) createDashboard(root, config).start();
}
