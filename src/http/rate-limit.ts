/**
 * Rate-limit keys and store. Counters live in Redis when it is reachable and
 * in this process while it is not: ioredis queues a command while
 * disconnected and rejects it only after its reconnect attempts fail
 * (seconds), so with the plugin's Redis store alone every limited request
 * waited those seconds during a Redis outage before `skipOnError` let it
 * through. Here such a request is counted locally at once, so a flood is
 * still limited (per instance) while Redis is down.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type { FastifyRequest } from "fastify";
import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { Redis } from "ioredis";

type StoreParams = FastifyRateLimitOptions & { continueExceeding?: boolean; exponentialBackoff?: boolean };
// The plugin's own stores (CommonJS, without type declarations of their own).
const require = createRequire(import.meta.url);
const RedisStore = require("@fastify/rate-limit/store/RedisStore.js") as new (
  continueExceeding: boolean | undefined,
  exponentialBackoff: boolean | undefined,
  redis: Redis,
  key: string,
) => FastifyRateLimitStore;
const LocalStore = require("@fastify/rate-limit/store/LocalStore.js") as new (
  continueExceeding: boolean | undefined,
  exponentialBackoff: boolean | undefined,
) => FastifyRateLimitStore;

/**
 * One bucket per credential (bearer token or x-api-key), else per address: API-key callers behind one
 * address must not share a bucket (nor with anonymous requests). Hashed, so no credential is kept as a
 * Redis key or in the in-memory store.
 */
export function rateLimitKey(req: FastifyRequest): string {
  const credential = typeof req.headers.authorization === "string" ? req.headers.authorization : req.headers["x-api-key"];
  if (typeof credential === "string" && credential.length > 0) return `c:${createHash("sha256").update(credential).digest("base64url").slice(0, 22)}`;
  return `ip:${req.ip}`;
}

class RedisOrLocalStore implements FastifyRateLimitStore {
  constructor(
    private readonly remote: FastifyRateLimitStore,
    private readonly local: FastifyRateLimitStore,
    private readonly redis: Redis,
  ) {}

  incr(...args: Parameters<FastifyRateLimitStore["incr"]>): void {
    (this.redis.status === "ready" ? this.remote : this.local).incr(...args);
  }

  child(routeOptions: Parameters<FastifyRateLimitStore["child"]>[0]): FastifyRateLimitStore {
    return new RedisOrLocalStore(this.remote.child(routeOptions), this.local.child(routeOptions), this.redis);
  }
}

/** The plugin's `store` option: Redis counters under `nameSpace`, local ones while the client is not ready. */
export function redisOrLocalStore(redis: Redis, nameSpace: string): FastifyRateLimitStoreCtor {
  return class extends RedisOrLocalStore {
    constructor(params: StoreParams) {
      super(new RedisStore(params.continueExceeding, params.exponentialBackoff, redis, nameSpace), new LocalStore(params.continueExceeding, params.exponentialBackoff), redis);
    }
  };
}
