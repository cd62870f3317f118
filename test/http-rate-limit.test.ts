/**
 * The rate limiter's keys and store (src/http/rate-limit.ts): one bucket per
 * credential (bearer or x-api-key), never the raw credential as a Redis key,
 * and counters kept locally, without waiting, while Redis is unreachable.
 */
import { randomUUID } from "node:crypto";
import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { rateLimitKey, redisOrLocalStore } from "../src/http/rate-limit.js";
import { usingRedis } from "./support/database.js";
import { startTestHerald } from "./support/herald.js";

const apps: FastifyInstance[] = [];
const clients: Redis[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
  for (const c of clients) c.disconnect();
});

async function limitedApp(redis: Redis, nameSpace: string): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  await app.register(rateLimit, { global: true, max: 3, timeWindow: "1 minute", store: redisOrLocalStore(redis, nameSpace), keyGenerator: rateLimitKey, skipOnError: true });
  app.get("/api/x", async () => ({ ok: true }));
  await app.ready();
  return app;
}

const statuses = async (app: FastifyInstance, headers: Record<string, string>, n: number) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await app.inject({ method: "GET", url: "/api/x", headers })).statusCode);
  return out;
};

describe("rate-limit keys", () => {
  it("one bucket per bearer token and per x-api-key, separate from each other and from the address", async () => {
    // A Redis that is never reached: the local counters serve.
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(down);
    const app = await limitedApp(down, "t:");
    expect(await statuses(app, { "x-api-key": "key-a" }, 4)).toEqual([200, 200, 200, 429]);
    expect(await statuses(app, { "x-api-key": "key-b" }, 3)).toEqual([200, 200, 200]);
    expect(await statuses(app, { authorization: "Bearer token-a" }, 3)).toEqual([200, 200, 200]);
    expect(await statuses(app, {}, 3)).toEqual([200, 200, 200]);
  });

  it("answers at once from local counters while Redis is unreachable (no wait for ioredis's retries)", async () => {
    const down = new Redis("redis://127.0.0.1:1", { maxRetriesPerRequest: 2, retryStrategy: () => 1_000 });
    down.on("error", () => undefined);
    clients.push(down);
    const app = await limitedApp(down, "t:");
    const t0 = Date.now();
    const got = await statuses(app, { authorization: "Bearer flood" }, 5);
    expect(got).toEqual([200, 200, 200, 429, 429]);
    // With the plugin's Redis store alone each request waited for ioredis to give up (seconds).
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it.runIf(usingRedis)("with Redis up, counts there under the namespace by a hash, never the credential itself", async () => {
    const redis = new Redis(process.env.REDIS_URL!);
    clients.push(redis);
    await redis.ping(); // connected ("ready"): until then the local counters serve
    const ns = `herald-test-${randomUUID()}:ratelimit:`;
    const app = await limitedApp(redis, ns);
    const token = `secret-token-${randomUUID()}`;
    expect(await statuses(app, { authorization: `Bearer ${token}` }, 4)).toEqual([200, 200, 200, 429]);
    const keys = await redis.keys(`${ns}*`);
    expect(keys.length).toBe(1);
    expect(keys[0]).not.toContain(token);
    expect(await redis.get(keys[0]!)).toBe("4");
    await redis.del(...keys);
  });
});

describe("rate limits in the Herald app", () => {
  it("every /api route is limited per credential, before authentication; operations routes are not", async () => {
    const h = await startTestHerald({ env: { HERALD_RATE_LIMIT_PER_MINUTE: "5" } });
    try {
      const get = (url: string, token?: string) =>
        h.herald.app.inject({ method: "GET", url, headers: token ? { authorization: `Bearer ${token}` } : {} });
      const codes = async (url: string, token: string | undefined, n: number) => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push((await get(url, token)).statusCode);
        return out;
      };
      const alice = await h.tokenFor(`rl-alice-${randomUUID()}`);
      const bob = await h.tokenFor(`rl-bob-${randomUUID()}`);
      // Reads (no limit of their own before): the credential's budget, then 429 with Retry-After.
      expect(await codes("/api/notifications", alice, 6)).toEqual([200, 200, 200, 200, 200, 429]);
      const limited = await get("/api/notifications/unread-count", alice);
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      expect(limited.json()).toMatchObject({ status: 429, code: "HERALD_RATE_LIMITED" });
      expect(await codes("/api/notifications", bob, 1)).toEqual([200]);
      // The limiter runs first: a bad token's requests are refused with 429 once over budget, unverified.
      const garbage = `not-a-token-${randomUUID()}`;
      expect(await codes("/api/notifications", garbage, 6)).toEqual([401, 401, 401, 401, 401, 429]);
      expect(await codes("/health", alice, 8)).toEqual([200, 200, 200, 200, 200, 200, 200, 200]);
    } finally {
      await h.stop();
    }
  });
});
