/**
 * Failed WebSocket authentications count against the address's failed-authentication budget, the one
 * HTTP uses (src/limits/): past it, an upgrade is refused with 429, Retry-After and the REST API's problem
 * body before its token is verified. The address is the socket's unless TRUST_PROXY names the proxy; an
 * admin credential offered for a socket is answered exactly like a wrong one (no oracle for key guesses).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { type UpgradeAnswer as Refusal, upgrade } from "./helpers.js";

const BUDGET = 5;

const garbage = () => `?token=garbage-${randomUUID()}`;

describe("failed WebSocket authentications, socket address (TRUST_PROXY off)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald({ env: { HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: String(BUDGET) } });
  });
  afterAll(() => h.stop());

  it("100 garbage tokens with a different X-Forwarded-For each: the budget's worth of 401, then 429 + Retry-After + problem, HTTP failures then refused too", async () => {
    const answers: Refusal[] = [];
    for (let i = 0; i < 100; i++) answers.push(await upgrade(h.baseUrl, garbage(), { "x-forwarded-for": `198.51.100.${i}` }));
    expect(answers.map((a) => a.status)).toEqual([...Array(BUDGET).fill(401), ...Array(100 - BUDGET).fill(429)]);
    const last = answers[99]!;
    expect(Number(last.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(last.headers["retry-after"])).toBeLessThanOrEqual(60);
    expect(last.headers["content-type"]).toBe("application/problem+json; charset=utf-8");
    expect(JSON.parse(last.body)).toMatchObject({ type: "https://herald.dev/problems/herald-rate-limited", title: "Too many requests", status: 429, code: "HERALD_RATE_LIMITED" });
    // One budget: the address's HTTP failures are refused as well.
    const rest = await fetch(`${h.baseUrl}/api/notifications`, { headers: { authorization: `Bearer garbage-${randomUUID()}` } });
    expect(rest.status).toBe(429);
    // Spent for failures only: a valid token from the same address (another user behind the NAT) still connects.
    expect((await upgrade(h.baseUrl, `?token=${await h.tokenFor("wsaf-valid")}`)).status).toBe(101);
  });
});

describe("failed WebSocket authentications behind a named proxy (TRUST_PROXY=127.0.0.1)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald({ env: { HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: String(BUDGET), TRUST_PROXY: "127.0.0.1" } });
  });
  afterAll(() => h.stop());

  it("each forwarded client has its own budget, shared between HTTP and WebSocket", async () => {
    const client = "203.0.113.10";
    // HTTP spends three, WebSocket the other two; the next upgrade is refused before verification.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${h.baseUrl}/api/notifications`, { headers: { authorization: `Bearer garbage-${randomUUID()}`, "x-forwarded-for": client } });
      expect(res.status).toBe(401);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await upgrade(h.baseUrl, garbage(), { "x-forwarded-for": client })).status);
    expect(statuses).toEqual([401, 401, 429, 429]);
    // Another client behind the same proxy is untouched, and can connect.
    expect((await upgrade(h.baseUrl, garbage(), { "x-forwarded-for": "203.0.113.11" })).status).toBe(401);
    expect((await upgrade(h.baseUrl, `?token=${await h.tokenFor("wsaf-other")}`, { "x-forwarded-for": "203.0.113.12" })).status).toBe(101);
  });

  it("an admin API key or admin token as the socket's token is answered like garbage, and spends the budget", async () => {
    const client = "203.0.113.20";
    const wrong = await upgrade(h.baseUrl, garbage(), { "x-forwarded-for": client });
    const key = await upgrade(h.baseUrl, "?token=test-api-key", { "x-forwarded-for": client });
    const adminJwt = await upgrade(h.baseUrl, `?token=${h.adminToken}`, { "x-forwarded-for": client });
    for (const a of [wrong, key, adminJwt]) {
      expect(a.status).toBe(401);
      expect(a.body).toBe(wrong.body);
      expect(a.headers["www-authenticate"]).toBe(wrong.headers["www-authenticate"]);
    }
    // Three failures counted: two more and the budget is spent.
    const rest: number[] = [];
    for (let i = 0; i < 3; i++) rest.push((await upgrade(h.baseUrl, "?token=test-api-key", { "x-forwarded-for": client })).status);
    expect(rest).toEqual([401, 401, 429]);
  });
});

describe("a user's WebSocket connection rate", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald({ realtime: { connectBurst: 2, connectsPerSecond: 0.5 } });
  });
  afterAll(() => h.stop());

  it("past the burst, an upgrade gets the REST API's 429: problem body, Retry-After and RateLimit-* headers", async () => {
    const query = `?token=${await h.tokenFor("wsaf-burst")}`;
    expect((await upgrade(h.baseUrl, query)).status).toBe(101);
    expect((await upgrade(h.baseUrl, query)).status).toBe(101);
    const refused = await upgrade(h.baseUrl, query);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers["ratelimit-limit"]).toBe("2");
    expect(refused.headers["ratelimit-remaining"]).toBe("0");
    expect(Number(refused.headers["ratelimit-reset"])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 429, code: "HERALD_RATE_LIMITED" });
  });
});
