/** Push subscription ownership (issue 14.2), the per-user cap (15.3) and the SSRF rule at registration (15.4), over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";

let t: TestHerald;
let strict: TestHerald;
beforeAll(async () => {
  t = await startTestHerald({ env: { HERALD_PUSH_MAX_SUBSCRIPTIONS: "3" } });
  strict = await startTestHerald({ env: { HERALD_PUSH_ALLOW_PRIVATE: "false" } });
});
afterAll(async () => {
  await t?.stop();
  await strict?.stop();
});

const keys = (n: number) => ({
  p256dh: `BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7D${n}M`,
  auth: `tBHItJI5svbpez7KI4CC${n}g`,
});

async function api(method: string, url: string, token: string, body?: unknown, base = t.baseUrl) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type"), body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

const owners = (endpoint: string) =>
  t.database.query<{ user_id: string; p256dh: string; auth: string }>("SELECT user_id, p256dh, auth FROM push_subscriptions WHERE endpoint = $1", [endpoint]);

describe("push subscription ownership", () => {
  it("replaying another user's endpoint with other keys is 409 and leaves the owner's row alone", async () => {
    const alice = await t.tokenFor("own-alice");
    const mallory = await t.tokenFor("own-mallory");
    const endpoint = "http://127.0.0.1:9/push/alice-laptop";
    expect((await api("POST", "/api/push/subscriptions", alice, { endpoint, keys: keys(1) })).status).toBe(201);

    const replay = await api("POST", "/api/push/subscriptions", mallory, { endpoint, keys: keys(2) });
    expect(replay.status).toBe(409);
    expect(replay.type).toMatch(/application\/problem\+json/);
    expect(replay.body).toMatchObject({ status: 409 });
    expect(await owners(endpoint)).toEqual([{ user_id: "own-alice", ...keys(1) }]);
    // The owner still removes her own subscription.
    expect((await api("DELETE", "/api/push/subscriptions", alice, { endpoint })).status).toBe(204);
    // Once she removed it, the endpoint is free.
    expect((await api("POST", "/api/push/subscriptions", mallory, { endpoint, keys: keys(2) })).status).toBe(201);
    expect(await owners(endpoint)).toEqual([{ user_id: "own-mallory", ...keys(2) }]);
  });

  it("the same browser (same keys) moves to the user now signed in; the owner may renew her keys", async () => {
    const alice = await t.tokenFor("own-alice2");
    const bob = await t.tokenFor("own-bob2");
    const endpoint = "http://127.0.0.1:9/push/shared-browser";
    expect((await api("POST", "/api/push/subscriptions", alice, { endpoint, keys: keys(3) })).status).toBe(201);
    expect((await api("POST", "/api/push/subscriptions", alice, { endpoint, keys: keys(4) })).status).toBe(201);
    expect(await owners(endpoint)).toEqual([{ user_id: "own-alice2", ...keys(4) }]);
    expect((await api("POST", "/api/push/subscriptions", bob, { endpoint, keys: keys(4) })).status).toBe(201);
    expect(await owners(endpoint)).toEqual([{ user_id: "own-bob2", ...keys(4) }]);
  });
});

describe("subscriptions per user", () => {
  it("beyond HERALD_PUSH_MAX_SUBSCRIPTIONS the least recently registered is replaced; other users keep theirs", async () => {
    const carol = await t.tokenFor("cap-carol");
    const dave = await t.tokenFor("cap-dave");
    expect((await api("POST", "/api/push/subscriptions", dave, { endpoint: "http://127.0.0.1:9/push/dave", keys: keys(9) })).status).toBe(201);
    for (let i = 0; i < 5; i++) {
      expect((await api("POST", "/api/push/subscriptions", carol, { endpoint: `http://127.0.0.1:9/push/carol-${i}`, keys: keys(i) })).status).toBe(201);
    }
    const rows = await t.database.query<{ endpoint: string }>("SELECT endpoint FROM push_subscriptions WHERE user_id = 'cap-carol' ORDER BY endpoint");
    expect(rows.map((r) => r.endpoint)).toEqual([2, 3, 4].map((i) => `http://127.0.0.1:9/push/carol-${i}`));
    expect(await owners("http://127.0.0.1:9/push/dave")).toHaveLength(1);
  });
});

describe("push endpoints must be public addresses (HERALD_PUSH_ALLOW_PRIVATE=false)", () => {
  const refused = [
    "https://127.0.0.1:5432/x",
    "https://127.0.0.1:3443/redirect",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.7/push",
    "https://192.168.1.1/push",
    "https://[::1]/push",
    "https://[::ffff:127.0.0.1]/push",
    "https://[fd00::1]/push",
    "https://[fe80::1]/push",
    "https://0.0.0.0/push",
    "https://224.0.0.1/push",
    "https://localhost/push",
    // Other spellings of loopback and private addresses (the URL parser or DNS turns them into the above).
    "https://2130706433/push",
    "https://0x7f.1/push",
    "https://0177.0.0.1/push",
    "https://127.1/push",
    "https://[::ffff:7f00:1]/push",
    "https://[0:0:0:0:0:ffff:169.254.169.254]/push",
    "https://[::127.0.0.1]/push",
    "https://[64:ff9b::7f00:1]/push",
    "https://[fc00::1]/push",
    "https://[::]/push",
    "https://foo.localhost/push",
    "https://169.254.169.254./push",
    "https://[::ffff:0:7f00:1]/push",
    "https://[2002:7f00:1::]/push",
  ];
  it.each(refused)("%s is refused with 400 and nothing stored", async (endpoint) => {
    const token = await strict.tokenFor("ssrf-user");
    const res = await api("POST", "/api/push/subscriptions", token, { endpoint, keys: keys(1) }, strict.baseUrl);
    expect(res.status).toBe(400);
    expect(res.type).toMatch(/application\/problem\+json/);
    const rows = await strict.database.query("SELECT 1 FROM push_subscriptions WHERE endpoint = $1", [endpoint]);
    expect(rows).toHaveLength(0);
  });
});
