import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createApi } from "../../static/webapp/dashboard/api.js";

/** A fetch that answers from a list and records what it was asked. */
function fakeServer(answers) {
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ url, ...init });
    const answer = answers.shift();
    if (answer instanceof Error) throw answer;
    const { status = 200, body = null, headers = {}, redirectedTo = null } = answer;
    return {
      status,
      ok: status >= 200 && status < 300,
      redirected: redirectedTo !== null,
      url: redirectedTo || url,
      headers: new Headers(headers),
      text: async () => (body === null ? "" : typeof body === "string" ? body : JSON.stringify(body))
    };
  };
  return { fetch, requests };
}

const clock = { now: () => Date.parse("2026-01-10T12:00:00Z") };
const snapshot = { success: true, clients: [{ id: "a" }] };

test("it sends the last ETag back and keeps the last body on a 304", async () => {
  const server = fakeServer([
    { body: snapshot, headers: { ETag: '"v1"' } },
    { status: 304 },
    { body: { success: true, clients: [] }, headers: { ETag: '"v2"' } }
  ]);
  const api = createApi({ fetch: server.fetch, clock });

  assert.deepEqual(await api.getSnapshot("/clients/"), { body: snapshot, changed: true });
  assert.deepEqual(await api.getSnapshot("/clients/"), { body: snapshot, changed: false });
  const third = await api.getSnapshot("/clients/");

  assert.equal(third.changed, true);
  assert.deepEqual(third.body.clients, []);
  assert.equal(server.requests[0].headers["If-None-Match"], undefined);
  assert.equal(server.requests[1].headers["If-None-Match"], '"v1"');
  assert.equal(server.requests[2].headers["If-None-Match"], '"v1"');
  assert.equal(server.requests[0].cache, "no-store");
});

test("it keeps one ETag per URL and sends none with a plain GET", async () => {
  const server = fakeServer([
    { body: snapshot, headers: { ETag: '"clients"' } },
    { body: { success: true }, headers: { ETag: '"job"' } },
    { body: { success: true } },
    { status: 304 }
  ]);
  const api = createApi({ fetch: server.fetch, clock });
  await api.getSnapshot("/clients/");
  await api.getSnapshot("/job/");
  await api.get("/clients/");
  await api.getSnapshot("/job/");

  assert.equal(server.requests[2].headers["If-None-Match"], undefined);
  assert.equal(server.requests[3].headers["If-None-Match"], '"job"');
});

test("it forgets a snapshot the server sent without an ETag", async () => {
  const server = fakeServer([
    { body: snapshot, headers: { ETag: '"v1"' } },
    { body: snapshot },
    { body: snapshot }
  ]);
  const api = createApi({ fetch: server.fetch, clock });
  for (let i = 0; i < 3; i++) await api.getSnapshot("/clients/");

  assert.equal(server.requests[1].headers["If-None-Match"], '"v1"');
  assert.equal(server.requests[2].headers["If-None-Match"], undefined);
});

test("it rejects with the server's own error message and status", async () => {
  const server = fakeServer([
    { status: 404, body: { success: false, error: "job not found" } },
    { status: 500, body: "<html>oops</html>" },
    { status: 200, body: { success: false, error: "refused" } },
    { status: 200, body: "not json" },
    new TypeError("Failed to fetch")
  ]);
  const api = createApi({ fetch: server.fetch, clock });
  const failures = [];
  for (let i = 0; i < 5; i++) failures.push(await api.get("/x/").then(() => null, (error) => error));

  assert.ok(failures.every((error) => error instanceof ApiError));
  assert.deepEqual(failures.map((e) => [e.status, e.message]), [
    [404, "job not found"],
    [500, "Request failed (HTTP 500)."],
    [0, "refused"],
    [0, "Unexpected answer from the server."],
    [0, "The server could not be reached."]
  ]);
});

test("it reads a redirect to the login page as an expired session", async () => {
  const server = fakeServer([
    { body: "<html>login</html>", redirectedTo: "http://testserver/accounts/login/?next=/api/x/" },
    { body: { success: true }, redirectedTo: "http://testserver/api/y/" }
  ]);
  const api = createApi({ loginPath: "/accounts/login/", fetch: server.fetch, clock });

  const expired = await api.get("/api/x/").catch((error) => error);
  assert.deepEqual([expired.status, expired.message], [401, "Your session has expired."]);
  assert.deepEqual(await api.get("/api/x/"), { success: true }); // another redirect is fine
});

test("it posts with the CSRF token", async () => {
  const server = fakeServer([{ body: { success: true } }]);
  const api = createApi({ fetch: server.fetch, clock });
  await api.post("/stop/", "token-1");

  assert.equal(server.requests[0].method, "POST");
  assert.equal(server.requests[0].headers["X-CSRFToken"], "token-1");
  assert.equal(server.requests[0].credentials, "same-origin");
});

test("it tells the time on the server's clock, from the answers' Date header", async () => {
  const server = fakeServer([
    { body: { success: true }, headers: { Date: "Sat, 10 Jan 2026 12:00:30 GMT" } },
    { status: 500, headers: { Date: "garbage" } }
  ]);
  const api = createApi({ fetch: server.fetch, clock });
  assert.equal(api.now(), clock.now());

  await api.get("/x/");
  assert.equal(api.now(), clock.now() + 30_000);
  await api.get("/x/").catch(() => null);
  assert.equal(api.now(), clock.now() + 30_000); // an unreadable Date changes nothing
});
