/**
 * Rate limits (src/http/rate-limit.ts): a verified credential has its own
 * bucket (per user for provider tokens, per credential for admin tokens and
 * API keys, at a separate, much higher limit); a request without a valid
 * credential counts against its address, failed authentications more tightly
 * still; the address is the socket's unless TRUST_PROXY names the proxy.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/index.js";
import { loadConfig } from "../../src/config/index.js";
import { LocalCounter, RedisCounter } from "../../src/limits/index.js";
import { usingRedis } from "../support/database.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";

const clients: Redis[] = [];
afterAll(() => {
  for (const c of clients) c.disconnect();
});

describe("fixed-window counters", () => {
  it("count within the window and start again after it (injected clock)", async () => {
    let now = 1_000_000;
    const counter = new LocalCounter(() => now);
    expect(await counter.hit("k", 60_000)).toEqual({ count: 1, resetMs: 60_000 });
    now += 59_000;
    expect(await counter.hit("k", 60_000)).toEqual({ count: 2, resetMs: 1_000 });
    expect(await counter.hit("other", 60_000)).toEqual({ count: 1, resetMs: 60_000 });
    now += 1_000;
    expect(await counter.hit("k", 60_000)).toEqual({ count: 1, resetMs: 60_000 });
  });

  it("answers at once from local counters while Redis is unreachable (no wait for ioredis's retries)", async () => {
    const down = new Redis("redis://127.0.0.1:1", { maxRetriesPerRequest: 2, retryStrategy: () => 1_000 });
    down.on("error", () => undefined);
    clients.push(down);
    const counter = new RedisCounter(down, "t:", new LocalCounter());
    const t0 = Date.now();
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) counts.push((await counter.hit("flood", 60_000))!.count);
    expect(counts).toEqual([1, 2, 3, 4, 5]);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it.runIf(usingRedis)("with Redis up, counts there under the namespace with the window's expiry", async () => {
    const redis = new Redis(process.env.REDIS_URL!);
    clients.push(redis);
    await redis.ping();
    const ns = `herald-test-${randomUUID()}:ratelimit:`;
    const counter = new RedisCounter(redis, ns, new LocalCounter());
    for (let i = 0; i < 3; i++) await counter.hit("k", 60_000);
    const last = await counter.hit("k", 60_000);
    expect(last!.count).toBe(4);
    expect(last!.resetMs).toBeGreaterThan(50_000);
    expect(await redis.get(`${ns}k`)).toBe("4");
    expect(await redis.pttl(`${ns}k`)).toBeGreaterThan(50_000);
    await redis.del(`${ns}k`);
  });

  it.runIf(usingRedis)("the hits of one turn go in one round trip per 500, each answered with its exact count in order", async () => {
    const redis = new Redis(process.env.REDIS_URL!);
    clients.push(redis);
    await redis.ping();
    const ns = `herald-test-${randomUUID()}:ratelimit:`;
    const counter = new RedisCounter(redis, ns, new LocalCounter());
    const sent: string[] = [];
    // Count what ioredis writes: every command goes through sendCommand.
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name);
      return (send as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof redis.sendCommand;
    // 1,200 hits in one turn: 1,000 on one key, 200 alternating on two others with their own windows.
    const hits = [
      ...Array.from({ length: 1000 }, () => counter.hit("same", 60_000)),
      ...Array.from({ length: 200 }, (_, i) => counter.hit(i % 2 ? "a" : "b", i % 2 ? 1_000 : 120_000)),
    ];
    const answers = await Promise.all(hits);
    expect(answers.slice(0, 1000).map((h) => h!.count)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(answers.slice(1000).map((h) => h!.count)).toEqual(Array.from({ length: 200 }, (_, i) => Math.floor(i / 2) + 1));
    expect(answers[1001]!.resetMs).toBeLessThanOrEqual(1_000);
    expect(answers[1000]!.resetMs).toBeGreaterThan(60_000);
    // Three script calls (500 + 500 + 200); ioredis resends a call once when Redis did not have the script yet.
    expect(sent.filter((name) => name === "evalsha").length).toBeGreaterThanOrEqual(3);
    expect(sent.filter((name) => name === "evalsha").length).toBeLessThanOrEqual(6);
    expect(sent.every((name) => name === "evalsha")).toBe(true);
    redis.sendCommand = send;
    expect(await redis.get(`${ns}same`)).toBe("1000");
    expect(await redis.pttl(`${ns}a`)).toBeLessThanOrEqual(1_000);
    await redis.del(`${ns}same`, `${ns}a`, `${ns}b`);
  });
});

const count429 = (statuses: number[]) => statuses.filter((s) => s === 429).length;

describe("who is limited how (HERALD_RATE_LIMIT_PER_MINUTE=60, other limits at their defaults)", () => {
  let h: TestHerald;
  const prefix = `herald-test-${randomUUID()}:`;
  beforeAll(async () => {
    h = await startTestHerald({ env: { HERALD_RATE_LIMIT_PER_MINUTE: "60" }, busPrefix: prefix });
  });
  afterAll(() => h.stop());
  const get = (url: string, headers: Record<string, string> = {}) => h.herald.app.inject({ method: "GET", url, headers });

  it("a provider has one budget per user: 429 with Retry-After, RateLimit-* headers and a problem body past it", async () => {
    const userId = `rl-alice-${randomUUID()}`;
    const token = await h.tokenFor(userId);
    const first = await get("/api/notifications", { authorization: `Bearer ${token}` });
    expect(first.headers["ratelimit-limit"]).toBe("60");
    expect(first.headers["ratelimit-remaining"]).toBe("59");
    for (let i = 1; i < 60; i++) expect((await get("/api/notifications", { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    // Another token of the same user shares the budget.
    const limited = await get("/api/notifications/unread-count", { authorization: `Bearer ${await h.tokenFor(userId, "2h")}` });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(limited.headers["ratelimit-limit"]).toBe("60");
    expect(limited.headers["ratelimit-remaining"]).toBe("0");
    expect(Number(limited.headers["ratelimit-reset"])).toBeGreaterThan(0);
    expect(limited.headers["content-type"]).toContain("application/problem+json");
    expect(limited.json()).toMatchObject({ status: 429, code: "HERALD_RATE_LIMITED" });
    // Others keep theirs; operations routes are not limited.
    expect((await get("/api/notifications", { authorization: `Bearer ${await h.tokenFor(`rl-bob-${randomUUID()}`)}` })).statusCode).toBe(200);
    for (let i = 0; i < 70; i++) expect((await get("/health")).statusCode).toBe(200);
  });

  it("the operator's API key and admin tokens are not throttled at a creator's natural pace", async () => {
    // 90 creations is 1.5 x HERALD_RATE_LIMIT_PER_MINUTE: the scale of 9,000 against the default 6,000.
    for (const headers of [{ "x-api-key": "test-api-key" }, { authorization: `Bearer ${h.adminToken}` }]) {
      const statuses: number[] = [];
      const others: string[] = [];
      let limit: unknown;
      for (let i = 0; i < 90; i++) {
        const res = await h.herald.app.inject({ method: "POST", url: "/api/notifications", headers, payload: { userId: "rl-target", type: "new_message", title: `t${i}`, message: "m" } });
        statuses.push(res.statusCode);
        if (res.statusCode !== 201 && res.statusCode !== 429) others.push(`${i}: ${res.statusCode} ${res.body.slice(0, 300)}`);
        limit = res.headers["ratelimit-limit"];
      }
      expect(count429(statuses)).toBe(0);
      // Every other answer, with its body: a failure names what came back.
      expect(others).toEqual([]);
      expect(limit).toBe("100000"); // HERALD_ADMIN_RATE_LIMIT_PER_MINUTE's default
    }
  });

  it("600 requests with a different garbage token each share the address's failed-authentication budget", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 600; i++) statuses.push((await get("/api/notifications", { authorization: `Bearer garbage-${randomUUID()}` })).statusCode);
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true); // HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: 30
    expect(count429(statuses)).toBe(570);
    // A valid credential from the same address keeps its own budget.
    expect((await get("/api/notifications", { authorization: `Bearer ${await h.tokenFor(`rl-carol-${randomUUID()}`)}` })).statusCode).toBe(200);
  });

  it("600 requests without a credential and a different X-Forwarded-For each share the socket's address (TRUST_PROXY off)", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 600; i++) statuses.push((await get("/api/push/vapid-public-key", { "x-forwarded-for": `198.51.100.${i % 250}, 203.0.113.${i % 200}` })).statusCode);
    expect(statuses.slice(0, 60).every((s) => s === 200)).toBe(true);
    expect(count429(statuses)).toBe(540);
  });

  it.runIf(usingRedis)("the Redis counters hold neither a credential nor a user id", async () => {
    const token = await mintToken(TEST_SECRET, { sub: `rl-secretive-${randomUUID()}` });
    await get("/api/notifications", { authorization: `Bearer ${token}` });
    const redis = new Redis(process.env.REDIS_URL!);
    clients.push(redis);
    const keys = await redis.keys(`${prefix}ratelimit:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k).not.toContain("rl-");
      expect(k).not.toContain(token.slice(-20));
      expect(k).not.toContain("test-api-key");
    }
  });
});

describe("TRUST_PROXY names the proxy to believe", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald({ env: { HERALD_RATE_LIMIT_PER_MINUTE: "20", HERALD_ADMIN_RATE_LIMIT_PER_MINUTE: "10", TRUST_PROXY: "127.0.0.1" } });
  });
  afterAll(() => h.stop());
  const anonymous = (remoteAddress: string, forwardedFor: string) =>
    h.herald.app.inject({ method: "GET", url: "/api/push/vapid-public-key", remoteAddress, headers: { "x-forwarded-for": forwardedFor } });

  it("behind the named proxy each client has its own budget; from anyone else X-Forwarded-For is ignored", async () => {
    const viaProxy: number[] = [];
    for (let i = 0; i < 60; i++) viaProxy.push((await anonymous("127.0.0.1", `198.51.100.${i}`)).statusCode);
    expect(count429(viaProxy)).toBe(0);
    // The same client through the proxy still has one budget.
    const one: number[] = [];
    for (let i = 0; i < 21; i++) one.push((await anonymous("127.0.0.1", "198.51.100.200")).statusCode);
    expect(count429(one)).toBe(1);
    // Not the proxy: its X-Forwarded-For is not believed.
    const direct: number[] = [];
    for (let i = 0; i < 60; i++) direct.push((await anonymous("192.0.2.7", `203.0.113.${i}`)).statusCode);
    expect(count429(direct)).toBe(40);
  });

  it("HERALD_ADMIN_RATE_LIMIT_PER_MINUTE sets the admin credentials' budget", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await h.herald.app.inject({ method: "GET", url: "/api/admin/queue", headers: { "x-api-key": "test-api-key" } })).statusCode);
    expect(statuses).toEqual([...Array(10).fill(200), 429]);
  });
});

describe("TRUST_PROXY and the limits in the configuration", () => {
  const load = (env: Record<string, string>) => loadConfig({ NODE_ENV: "test", ...env });
  it("is off by default, takes addresses, CIDRs and proxy-addr names, and refuses what would believe any client", () => {
    expect(load({}).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: "false" }).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: "10.0.0.0/8, loopback,::1" }).trustProxy).toEqual(["10.0.0.0/8", "loopback", "::1"]);
    for (const bad of ["true", "1", "10.0.0.0/33", "proxy.example.com"]) expect(() => load({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/);
  });

  it("has the documented defaults", () => {
    const c = load({});
    expect([c.rateLimitPerMinute, c.adminRateLimitPerMinute, c.authFailureRateLimitPerMinute]).toEqual([6000, 100_000, 30]);
    expect(() => load({ HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: "0" })).toThrow(/HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE/);
  });
});
