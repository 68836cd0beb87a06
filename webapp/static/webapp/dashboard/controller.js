/*
 * The dashboard as a whole: polls the job and its clients, renders them, keeps the selected
 * client (#client_<id> in the address bar) in the detail card, and stops the job.
 */
import { ApiError, createApi } from "./api.js";
import { createClientListView } from "./client-list.js";
import { createDetailView } from "./detail.js";
import { setHidden, setText } from "./dom.js";
import { createJobView, createOverviewView } from "./overview.js";
import { Poller, inFinalRound, pollSettings } from "./polling.js";
import { clientStatuses, isFinishedJobStatus } from "./statuses.js";
import { clientHash, clientUrl, parseClientHash } from "./urls.js";

const CLOCK_TICK_MS = 1000; // "last seen … ago", "updated … ago", "retrying in …"

function readCookie(name) {
  for (const part of document.cookie ? document.cookie.split(";") : []) {
    const pair = part.trim();
    if (pair.startsWith(name + "=")) return decodeURIComponent(pair.slice(name.length + 1));
  }
  return null;
}

/**
 * Something the selected client's history or timeline shows has changed (a round, its
 * metrics, its status): the two are fetched again only then, not on every poll.
 */
function detailKey(client) {
  return [client.id, client.current_round, client.status, client.status_reason,
    client.accuracy, client.loss].join("|");
}

export function createDashboard(root, config) {
  const loginUrl = config.login_url || root.dataset.loginUrl || "/accounts/login/";
  const api = createApi({ loginPath: new URL(loginUrl, window.location.href).pathname });
  const statuses = clientStatuses(config.status_groups);

  const notices = {
    connection: root.querySelector("#notice-connection"),
    staleText: root.querySelector('[data-notice="stale-text"]'),
    retryNow: root.querySelector('[data-notice="retry-now"]'),
    notFound: root.querySelector("#notice-not-found"),
    action: root.querySelector("#notice-action"),
    liveState: root.querySelector('[data-job="live-state"]')
  };
  const stopForm = root.querySelector("#stop-job-form");
  const stopButton = root.querySelector("#stop-job-button");

  const state = {
    clients: new Map(), // id → the client's last row from the API
    selectedId: parseClientHash(window.location.hash),
    detailKey: null, // detailKey() of what the charts and the timeline show
    detailSeq: 0, // numbers detail requests: an answer for an older one is dropped
    finished: false, // the job has ended
    finalRound: false, // the job is in its last round (inFinalRound)
    loadedOnce: false,
    revealed: false // the #client_<id> row was scrolled into view once
  };

  const jobView = createJobView(root);
  const overview = createOverviewView(root);
  const clientList = createClientListView(root, statuses, (id) => selectClient(id, true));
  const detail = createDetailView(root, statuses);

  const poller = new Poller({
    settings: pollSettings(config.poll),
    load: loadSnapshots,
    describe: () => ({
      finished: state.finished,
      finalRound: state.finalRound,
      training: [...state.clients.values()].some((c) => statuses.isTraining(c.status))
    }),
    onFailure: showPollFailure,
    onSchedule(mode, delay) {
      root.dataset.pollMode = mode;
      root.dataset.pollInterval = String(delay);
      renderFreshness();
    },
    isHidden: () => document.hidden
  });

  /* ---------- errors ---------- */

  function redirectToLogin() {
    poller.halt();
    const here = window.location.pathname + window.location.search + window.location.hash;
    const sep = loginUrl.includes("?") ? "&" : "?";
    window.location.assign(loginUrl + sep + "next=" + encodeURIComponent(here));
  }

  function showJobNotFound() {
    poller.halt();
    setHidden(notices.notFound, false);
    setHidden(notices.connection, true);
    jobView.hideActions();
    setText(notices.liveState, "Live updates stopped.");
    root.dataset.pollMode = "halted";
    root.dataset.pollInterval = "";
  }

  /** A failed poll: stop for good (session gone, job deleted) or show the stale banner. */
  function showPollFailure(error) {
    if (error instanceof ApiError && error.status === 401) {
      redirectToLogin();
      return false;
    }
    if (error instanceof ApiError && error.status === 404) {
      showJobNotFound();
      return false;
    }
    setHidden(notices.connection, false);
    if (!(error instanceof ApiError)) console.error(error); // a bug here, not the network
    return true;
  }

  function showActionError(message) {
    setText(notices.action.querySelector('[data-notice="text"]'), message);
    setHidden(notices.action, false);
  }

  /* ---------- selection ---------- */

  function selectClient(id, updateHash) {
    const selected = id == null ? null : String(id);
    const changed = selected !== state.selectedId;
    state.selectedId = selected;
    if (updateHash && selected !== null && window.location.hash !== clientHash(selected)) {
      window.location.hash = clientHash(selected); // its hashchange selects it again: a no-op
    }
    if (changed) {
      state.detailKey = null;
      state.detailSeq++;
      detail.clearPerformance();
    }
    renderSelection();
  }

  function renderSelection() {
    clientList.markSelected(state.selectedId);
    const client = state.selectedId === null ? null : state.clients.get(state.selectedId);
    if (client) {
      detail.render(client, api.now());
      loadDetailIfChanged(client);
      return;
    }
    let text = null; // the card's own "Select a client…"
    if (state.selectedId !== null) {
      text = state.loadedOnce
        ? `Client ${state.selectedId} is not part of this job (yet).`
        : `Loading client ${state.selectedId}…`;
    }
    detail.showPlaceholder(text);
  }

  /* ---------- the selected client's history and timeline ---------- */

  function loadDetailIfChanged(client) {
    const key = detailKey(client);
    if (key === state.detailKey) return;
    if (state.detailKey === null) {
      detail.setChartStatus("Loading performance…");
      detail.setTimelineStatus("Loading events…");
    }
    state.detailKey = key;
    const seq = ++state.detailSeq;
    const id = String(client.id);
    const current = () => seq === state.detailSeq && id === state.selectedId;

    function load(template, show, describeFailure, setStatus) {
      api.get(clientUrl(template, id)).then(
        (body) => { if (current()) show(body); },
        (error) => {
          if (!current()) return;
          if (error.status === 401) return redirectToLogin();
          state.detailKey = null; // try again on the next poll
          setStatus(describeFailure(error.status === 404));
        }
      );
    }

    load(config.performance_url_template,
      (body) => detail.setPerformance(body.performance_data),
      (missing) => (missing ? "No performance data for this client." : "Could not load performance data — retrying."),
      detail.setChartStatus);
    load(config.events_url_template,
      (body) => detail.setTimeline(body.events, body.truncated),
      (missing) => (missing ? "No events for this client." : "Could not load the events — retrying."),
      detail.setTimelineStatus);
  }

  /* ---------- polling ---------- */

  async function loadSnapshots({ recovered }) {
    const [clients, job] = await Promise.all([
      api.getSnapshot(config.clients_url), api.getSnapshot(config.job_url)
    ]);
    setHidden(notices.connection, true);
    // A 304 keeps the view; after an outage everything is drawn again.
    const redraw = !state.loadedOnce || recovered;
    if (job.changed || redraw) renderJob(job.body.job);
    if (clients.changed || redraw) renderClients(clients.body);
    state.loadedOnce = true;
  }

  function renderFreshness() {
    if (poller.halted) return;
    const { liveState, staleText } = poller.freshness(state.finished);
    if (liveState !== null) setText(notices.liveState, liveState);
    if (staleText !== null) setText(notices.staleText, staleText);
  }

  function renderJob(job) {
    jobView.render(job);
    state.finished = isFinishedJobStatus(job.status);
    state.finalRound = inFinalRound(job);
  }

  function renderClients(body) {
    const clients = body.clients;
    state.clients = new Map(clients.map((c) => [String(c.id), c]));
    overview.render(body.overview_stats, clients);
    clientList.render(clients, api.now());
    const firstTime = !state.revealed && state.selectedId !== null && state.clients.has(state.selectedId);
    renderSelection();
    if (firstTime) {
      state.revealed = true;
      clientList.reveal(state.selectedId);
    }
  }

  /* ---------- stop job ---------- */

  function csrfToken() {
    const input = stopForm && stopForm.querySelector('input[name="csrfmiddlewaretoken"]');
    return readCookie("csrftoken") || (input ? input.value : "");
  }

  async function stopJob(event) {
    event.preventDefault();
    const jobName = root.querySelector('[data-job="name"]').textContent;
    if (!window.confirm(`Stop the training job “${jobName}”? Clients will stop after their current step.`)) {
      return;
    }
    stopButton.disabled = true;
    setText(stopButton, "Stopping…");
    setHidden(notices.action, true);
    try {
      await api.post(config.stop_url, csrfToken());
      await poller.refresh();
    } catch (error) {
      if (error.status === 401) redirectToLogin();
      else showActionError("Could not stop the job: " + error.message);
    }
    stopButton.disabled = false;
    setText(stopButton, "Stop job");
  }

  /* ---------- wiring ---------- */

  function start() {
    if (stopForm) stopForm.addEventListener("submit", stopJob);
    const close = notices.action.querySelector('[data-notice="close"]');
    if (close) close.addEventListener("click", () => setHidden(notices.action, true));
    if (notices.retryNow) notices.retryNow.addEventListener("click", () => poller.refresh());

    window.addEventListener("hashchange", () => {
      const id = parseClientHash(window.location.hash);
      if (id !== state.selectedId) selectClient(id, false);
      if (id !== null) clientList.reveal(id);
    });

    // Hidden tab: the next polls come slower; visible again: catch up at once (a 304 is cheap).
    document.addEventListener("visibilitychange", () => {
      if (poller.halted || poller.inFlight) return;
      if (document.hidden) poller.schedule();
      else poller.refresh();
    });

    window.setInterval(() => {
      if (document.hidden) return;
      const now = api.now();
      clientList.tick(now);
      renderFreshness();
      const client = state.selectedId === null ? null : state.clients.get(state.selectedId);
      if (client) detail.renderLastSeen(client, now);
    }, CLOCK_TICK_MS);

    renderSelection();
    poller.refresh();
  }

  return { start };
}
