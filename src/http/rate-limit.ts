/**
 * Rate limits, owned outright: fixed-window counters (Redis when reachable,
 * this process while it is not) and one onRequest hook that picks the bucket
 * from the matched route and the verified caller, never from the raw URL or
 * an unverified credential (either let anyone step around the limit).
 *
 * - A provider token: one bucket per user, per route with a limit of its own
 *   (routeOptions.config.rateLimit) or across the other /api routes.
 * - An admin token or API key: one bucket per credential, all routes, at
 *   HERALD_ADMIN_RATE_LIMIT_PER_MINUTE (the operator's backend is no flood).
 * - No credential: the address's bucket; a credential that fails: the
 *   address's failed-authentication bucket, smaller still.
 */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import { tokenFromHeaders } from "../auth/index.js";
import { principalOf } from "./auth.js";
import { problem, sendProblem } from "./problem.js";

export interface RouteRateLimit {
  max: number;
  timeWindow: "1 minute" | number;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** A route's own limit (its own bucket per caller), or false for none. */
    rateLimit?: RouteRateLimit | false;
  }
}

export interface Hit {
  count: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
}

/** Fixed-window counting: the hit's count in the current window of `windowMs` for `key`; undefined = not counted. */
export interface WindowCounter {
  hit(key: string, windowMs: number): Promise<Hit | undefined>;
}

export class LocalCounter implements WindowCounter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private nextSweep = 0;
  constructor(private readonly now: () => number = Date.now) {}

  async hit(key: string, windowMs: number): Promise<Hit> {
    const now = this.now();
    if (now >= this.nextSweep) this.sweep(now, windowMs);
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetMs: w.resetAt - now };
  }

  /** Ended windows go, so the map holds only the callers of the current window. */
  private sweep(now: number, windowMs: number): void {
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    this.nextSweep = now + windowMs;
  }
}

// INCR and the window's expiry in one round trip; an expiry lost (PTTL -1) is set again.
const HIT_SCRIPT = `
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}`;

/**
 * Counters in Redis under `prefix`, shared by every instance. While the
 * client is not ready the local counters serve at once: ioredis queues a
 * command while disconnected and rejects it only after its retries (seconds),
 * and a flood must stay limited (per instance) during a Redis outage.
 */
export class RedisCounter implements WindowCounter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: LocalCounter,
  ) {
    if (!("heraldRateHit" in redis)) redis.defineCommand("heraldRateHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  async hit(key: string, windowMs: number): Promise<Hit | undefined> {
    if (this.redis.status !== "ready") return this.local.hit(key, windowMs);
    try {
      const run = (this.redis as unknown as { heraldRateHit(k: string, ms: number): Promise<[number, number]> }).heraldRateHit;
      const [count, resetMs] = await run.call(this.redis, `${this.prefix}${key}`, windowMs);
      return { count, resetMs };
    } catch {
      return undefined; // a command lost with the connection: let the request through rather than fail it
    }
  }
}

const WINDOW_MS = 60_000;
const windowMs = (w: RouteRateLimit["timeWindow"]) => (w === "1 minute" ? WINDOW_MS : w);
/** Hashed: no credential or user id is kept as a Redis key or in memory. */
const digest = (value: string) => createHash("sha256").update(value).digest("base64url").slice(0, 22);

export interface RateLimitOptions {
  counter: WindowCounter;
  perMinute: number;
  adminPerMinute: number;
  authFailuresPerMinute: number;
}

interface Bucket {
  key: string;
  max: number;
  windowMs: number;
}

/** The route @fastify/static adds for the web UI (src/http/routes/web.ts): whatever no other route matched. */
const STATIC_WILDCARD = "/*";

/** Which bucket a request counts against; undefined for routes that are not limited. */
async function bucketOf(req: FastifyRequest, o: RateLimitOptions): Promise<Bucket | undefined> {
  const route = req.routeOptions;
  // Unmatched requests (404) count against their address: probing costs like anything else. So does the
  // web UI's static wildcard, which catches every unmatched path when the UI is served (/api/x/, /api//x,
  // /api/x;p answered 404 or 403 from it, never limited).
  const unmatched = route.url === undefined || route.url === STATIC_WILDCARD;
  if (!unmatched && (!route.url.startsWith("/api/") || route.config.rateLimit === false)) return undefined;
  const own = route.config?.rateLimit || undefined;
  const scope = own ? `r:${req.method}:${route.url}` : "api";
  const perAddress = { key: `${scope}:ip:${req.ip}`, max: own?.max ?? o.perMinute, windowMs: own ? windowMs(own.timeWindow) : WINDOW_MS };
  const token = tokenFromHeaders(req.headers);
  if (token === undefined || unmatched) return perAddress;
  const principal = await principalOf(req).catch(() => undefined);
  if (!principal) return { key: `auth-failed:${req.ip}`, max: o.authFailuresPerMinute, windowMs: WINDOW_MS };
  if (principal.kind === "admin") return { key: `admin:${digest(token)}`, max: o.adminPerMinute, windowMs: WINDOW_MS };
  return { ...perAddress, key: `${scope}:user:${digest(principal.userId)}` };
}

function setHeaders(reply: FastifyReply, max: number, hit: Hit): void {
  reply.header("ratelimit-limit", max);
  reply.header("ratelimit-remaining", Math.max(0, max - hit.count));
  reply.header("ratelimit-reset", Math.max(1, Math.ceil(hit.resetMs / 1000)));
}

/**
 * Adds the limiter to `app` (the root instance, before the routes): an onRequest hook, so it runs before
 * every route's own hooks, and a request over its budget costs one authentication (cached for the route)
 * and one counter hit.
 */
export function registerRateLimits(app: FastifyInstance, options: RateLimitOptions): void {
  app.addHook("onRequest", async (req, reply) => {
    const bucket = await bucketOf(req, options);
    if (!bucket) return;
    const hit = await options.counter.hit(bucket.key, bucket.windowMs);
    if (!hit) return;
    setHeaders(reply, bucket.max, hit);
    if (hit.count <= bucket.max) return;
    const seconds = Math.max(1, Math.ceil(hit.resetMs / 1000));
    reply.header("retry-after", seconds);
    return sendProblem(reply, problem("HERALD_RATE_LIMITED", `Rate limit exceeded; retry in ${seconds} s`));
  });
}
