import assert from "node:assert/strict";
import { test } from "node:test";

import { clientHash, clientUrl, parseClientHash } from "../../static/webapp/dashboard/urls.js";

test("it links a client as #client_<8 hex>, its id, without doubling the prefix", () => {
  assert.equal(clientHash("client_a7693612"), "#client_a7693612");
  assert.equal(parseClientHash("#client_a7693612"), "client_a7693612");
});

test("it still opens the older doubled links", () => {
  assert.equal(parseClientHash("#client_client_a7693612"), "client_a7693612");
});

test("it reads back the client a page anchor names", () => {
  for (const id of ["client_ab12", "client_a b", "client_x/y"]) {
    assert.equal(parseClientHash(clientHash(id)), id);
  }
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
