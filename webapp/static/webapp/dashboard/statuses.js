/*
 * Client and job statuses as the dashboard shows them.
 *
 * Which statuses exist and which group each belongs to (active, warning, terminal, training)
 * is the server's: it sends them as `status_groups` in #dashboard-config, so a status added
 * there shows up here without a second list to keep in step. Only presentation lives here:
 * labels, colour classes (.status-<value> in app.css, shared with the server-rendered
 * badges) and the order problems are listed in.
 */

const LABELS = {
  pending: "Pending",
  connected: "Connected",
  training: "Training",
  reported: "Reported",
  completed: "Completed",
  error: "Error",
  offline: "Offline",
  slow: "Slow",
  stopped: "Stopped",
  dropped: "Dropped",
  // job-only statuses
  running: "Running",
  failed: "Failed"
};

// Job statuses (TrainingJob.Status): a finished job is polled slowly, a pending or running
// one can be stopped.
const FINISHED_JOB_STATUSES = ["completed", "failed", "stopped", "error"];
const STOPPABLE_JOB_STATUSES = ["pending", "running"];

/** {label, className} for any client or job status; an unknown value stays readable. */
export function statusInfo(status) {
  const key = status == null ? "" : String(status);
  if (Object.prototype.hasOwnProperty.call(LABELS, key)) {
    return { label: LABELS[key], className: "status-" + key };
  }
  const label = key ? key.charAt(0).toUpperCase() + key.slice(1).replace(/_/g, " ") : "Unknown";
  return { label, className: "status-unknown" };
}

export function isFinishedJobStatus(status) {
  return FINISHED_JOB_STATUSES.includes(status);
}

export function isStoppableJobStatus(status) {
  return STOPPABLE_JOB_STATUSES.includes(status);
}

/**
 * The server's client status groups, with the questions the views ask of them.
 * `groups` is dashboard-config's `status_groups`: {all, active, warning, terminal, training},
 * each a list of status values; the order of `warning` is the order problems are listed in.
 */
export function clientStatuses(groups) {
  const group = (name) => (Array.isArray(groups && groups[name]) ? groups[name] : []);
  const warning = group("warning");
  const training = group("training");

  // The filter's options: problems first, then what is under way, then everything else in
  // the server's order. Each status once.
  const filterOrder = [...new Set([...warning, ...training, ...group("active"), ...group("all")])];

  const isWarning = (status) => warning.includes(status);

  /** Problems first (in the order of `warning`), then by name, then by id. */
  function compareClients(a, b) {
    const rank = (client) => {
      const index = warning.indexOf(client.status);
      return index === -1 ? warning.length : index;
    };
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    const na = String(a.name || "").toLowerCase();
    const nb = String(b.name || "").toLowerCase();
    if (na !== nb) return na < nb ? -1 : 1;
    const ia = String(a.id);
    const ib = String(b.id);
    return ia < ib ? -1 : ia > ib ? 1 : 0;
  }

  /** Does a client pass the list filter: "" (all), "problems" or one status? */
  function matchesFilter(client, filter) {
    if (!filter) return true;
    if (filter === "problems") return isWarning(client.status);
    return client.status === filter;
  }

  return {
    warning,
    filterOrder,
    isWarning,
    // Leaving one of these for `connected` is a rejoin.
    isUnusable: (status) => group("unusable").includes(status),
    isTraining: (status) => training.includes(status),
    compareClients,
    matchesFilter
  };
}
