import assert from "node:assert/strict";
import { test } from "node:test";

import { clientHash, clientUrl, parseClientHash } from "../../static/webapp/dashboard/urls.js";

test("it reads back the client a page anchor names", () => {
  assert.equal(parseClientHash(clientHash("client_ab12")), "client_ab12");
  assert.equal(parseClientHash("#client_a%20b"), "a b");
  assert.equal(parseClientHash("#client_"), null);
  assert.equal(parseClientHash("#other"), null);
  assert.equal(parseClientHash(""), null);
});

test("it puts the client id, escaped, where each URL template has its placeholder", () => {
  const events = "/api/jobs/7/clients/__CLIENT__/events/";
  assert.equal(clientUrl(events, "client_1"), "/api/jobs/7/clients/client_1/events/");
  assert.equal(clientUrl(events, "a/b?c"), "/api/jobs/7/clients/a%2Fb%3Fc/events/");
  assert.equal(clientUrl("/x/__CLIENT__/__CLIENT__/", "7"), "/x/7/7/");
});
