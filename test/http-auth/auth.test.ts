/**
 * Who may call what: every guarded route (notifications, preferences, users,
 * templates, digests, analytics, push, admin) refuses a missing or bad
 * credential (401) and the wrong kind of credential (403), with a problem body
 * and nothing written. One guard decides it for all (src/http/auth.ts).
 */
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/index.js";
import type { Listed, Problem } from "../support/bodies.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";
import { api, expectProblem, rowCounts } from "../notifications/api.js";

let h: TestHerald;
let call: ReturnType<typeof api>;
const ID = "00000000-0000-4000-8000-000000000000";
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

const providerRoutes: [string, string, unknown?][] = [
  ["GET", "/api/notifications"],
  ["GET", "/api/notifications/unread-count"],
  ["GET", `/api/notifications/${ID}`],
  ["PATCH", `/api/notifications/${ID}`, { read: true }],
  ["POST", "/api/notifications/read-all"],
  ["POST", "/api/notifications/archive-all"],
  ["DELETE", `/api/notifications/${ID}`],
  ["GET", "/api/preferences"],
  ["PATCH", "/api/preferences", { soundVolume: 10 }],
  ["GET", "/api/analytics/me"],
  ["GET", "/api/analytics/me/by-type"],
  ["POST", "/api/digests/test", { frequency: "daily" }],
  ["GET", "/api/digests/stats"],
  ["GET", "/api/digests"],
  ["POST", "/api/push/subscriptions", { endpoint: "https://push.example.com/x", keys: { p256dh: "a", auth: "b" } }],
  ["DELETE", "/api/push/subscriptions", { endpoint: "https://push.example.com/x" }],
];
const adminRoutes: [string, string, unknown?][] = [
  ["POST", "/api/notifications", { userId: "victim", type: "new_message", title: "t", message: "m" }],
  ["POST", "/api/notifications/broadcast", { type: "platform_update", title: "t", message: "m" }],
  ["PUT", "/api/users/victim", { name: "Victim" }],
  ["GET", "/api/users/victim"],
  ["POST", "/api/templates", { key: "auth.t", type: "new_message", titleTemplate: "t", messageTemplate: "m" }],
  ["GET", "/api/templates"],
  ["GET", "/api/templates/auth.t"],
  ["PUT", "/api/templates/auth.t", { icon: "x" }],
  ["DELETE", "/api/templates/auth.t"],
  ["GET", "/api/admin/queue"],
  ["GET", "/api/admin/connections"],
  ["GET", "/api/admin/users/victim/digests"],
  ["GET", "/api/admin/users/victim/digests/stats"],
  ["GET", `/api/analytics/notifications/${ID}`],
  ["GET", "/api/analytics/users/victim"],
  ["GET", "/api/analytics/users/victim/by-type"],
  ["GET", "/api/analytics/trends"],
  ["GET", "/api/analytics/top"],
  ["GET", "/api/analytics/overview"],
  ["GET", "/api/analytics/export"],
];
/** Open to providers and admins alike. */
const eitherRoutes: [string, string, unknown?][] = [["POST", "/api/analytics/events", { notificationId: ID, eventType: "opened" }]];

beforeAll(async () => {
  // Dozens of bad tokens from one address: the verdict on each is the subject, not the failed-authentication limit.
  h = await startTestHerald({ env: { HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: "1000000" } });
  call = api(h);
});
afterAll(() => h?.stop());

describe("bad credentials are refused with 401 on every route", () => {
  const badTokens: [string, () => Promise<string>][] = [
    ["no token", async () => ""],
    ["alg: none", async () => `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "u1", exp: inAnHour() })}.`],
    ["alg: none claiming admin", async () => `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "x", role: "admin", exp: inAnHour() })}.`],
    ["a token signed with the wrong key", () => mintToken("another-secret-that-is-long-enough-for-hs256-xyz", { sub: "u1" })],
    ["an expired token", () => mintToken(TEST_SECRET, { sub: "u1", expiresIn: -60 })],
    ["a token without exp", () => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("u1").sign(new TextEncoder().encode(TEST_SECRET))],
    ["an admin token without exp", () => new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("a").sign(new TextEncoder().encode(TEST_SECRET))],
    ["a token that expires in the year 5138", () => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("u1").setIssuedAt().setExpirationTime(99_999_999_999).sign(new TextEncoder().encode(TEST_SECRET))],
    ["an admin token without iat", () => new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("a").setExpirationTime("1h").sign(new TextEncoder().encode(TEST_SECRET))],
    ["HS512 with the right secret (algorithm not allowed)", () => new SignJWT({}).setProtectedHeader({ alg: "HS512" }).setSubject("u1").setExpirationTime("1h").sign(new TextEncoder().encode(TEST_SECRET))],
    [
      "a valid token whose payload was edited",
      async () => {
        const [head, , sig] = (await mintToken(TEST_SECRET, { sub: "u1" })).split(".");
        return `${head}.${b64({ sub: "someone-else", exp: inAnHour() })}.${sig}`;
      },
    ],
    ["a wrong API key", async () => "not-the-api-key"],
    ["garbage", async () => "a.b.c"],
  ];

  it.each(badTokens)("%s", async (_name, makeToken) => {
    const token = await makeToken();
    const before = await rowCounts(h);
    for (const [method, path, body] of [...providerRoutes, ...adminRoutes, ...eitherRoutes]) {
      const res = await call(method, path, { ...(token ? { token } : {}), ...(body ? { body } : {}) });
      try {
        expectProblem(res, 401, "HERALD_UNAUTHENTICATED");
      } catch (err) {
        throw new Error(`${method} ${path}: ${(err as Error).message}`);
      }
    }
    expect(await rowCounts(h)).toEqual(before);
  });

  it("says an expired token is expired", async () => {
    const res = await call<Problem>("GET", "/api/notifications", { token: await mintToken(TEST_SECRET, { sub: "u1", expiresIn: -60 }) });
    expect(res.body.detail).toMatch(/expired/i);
  });

  it("checks the credential before the body: a bad body without a token is a 401, not a 400", async () => {
    expectProblem(await call("POST", "/api/notifications", { raw: "{not json" }), 401, "HERALD_UNAUTHENTICATED");
  });
});

describe("the wrong kind of credential is refused with 403", () => {
  it.each(adminRoutes)("a provider token on admin route %s %s", async (method, path, body) => {
    const token = await h.tokenFor("victim");
    const before = await rowCounts(h);
    expectProblem(await call(method, path, { token, ...(body ? { body } : {}) }), 403, "HERALD_FORBIDDEN");
    expect(await rowCounts(h)).toEqual(before);
  });

  it.each(providerRoutes)("an admin token on provider route %s %s", async (method, path, body) => {
    expectProblem(await call(method, path, { token: h.adminToken, ...(body ? { body } : {}) }), 403, "HERALD_FORBIDDEN");
  });
});

describe("good credentials", () => {
  it("an API key works as admin, as a bearer token and in x-api-key", async () => {
    expect((await call("PUT", "/api/users/key-user", { token: "test-api-key", body: { name: "K" } })).status).toBe(200);
    expect((await call("GET", "/api/users/key-user", { headers: { "x-api-key": "test-api-key" } })).status).toBe(200);
  });

  it("an admin JWT creates, and the provider's token reads it", async () => {
    const res = await call("POST", "/api/notifications", { token: h.adminToken, body: { userId: "auth-ok", type: "new_message", title: "t", message: "m" } });
    expect(res.status).toBe(201);
    const list = await call<Listed>("GET", "/api/notifications", { token: await h.tokenFor("auth-ok") });
    expect(list.body.total).toBe(1);
  });
});
