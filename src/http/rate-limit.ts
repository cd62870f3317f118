/**
 * Rate limits, owned outright: fixed-window counters (src/limits: Redis when
 * reachable, this process while it is not) and one root onRequest hook that
 * picks the bucket from the matched route and the verified caller, never from
 * the raw URL or an unverified credential (either let anyone step around the
 * limit). It runs before the route guard (auth.ts, preParsing), which reuses
 * its verification of the credential.
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
import { type Principal, tokenFromHeaders } from "../auth/index.js";
import { type AuthFailureLimit, type Bucket, type Hit, WINDOW_MS, type WindowCounter } from "../limits/index.js";
import type { Credentials } from "./auth.js";
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

const windowMs = (w: RouteRateLimit["timeWindow"]) => (w === "1 minute" ? WINDOW_MS : w);
/** Hashed: no credential or user id is a bucket's key, in Redis or in memory. */
const digest = (value: string) => createHash("sha256").update(value).digest("base64url").slice(0, 22);

/**
 * The digest a verified principal's bucket is named by (its admin credential's, or its user id's), kept with
 * the principal: the credentials cache hands back the same object for a token, so a SHA-256 per request
 * (~6 us of each creation in issue 17's profile) becomes a lookup. Held weakly: it goes with the principal.
 * `of` is the hashed value itself, compared so a principal object shared by two values never lends its
 * digest; the credentials cache already holds that token in this process, and no bucket is keyed by it.
 */
const digests = new WeakMap<Principal, { of: string; digest: string }>();
function digestOf(principal: Principal, value: string): string {
  const known = digests.get(principal);
  if (known?.of === value) return known.digest;
  const d = digest(value);
  digests.set(principal, { of: value, digest: d });
  return d;
}

export interface RateLimitOptions {
  counter: WindowCounter;
  perMinute: number;
  adminPerMinute: number;
  /** The failed-authentication budget per address, shared with the WebSocket upgrades (same counter). */
  authFailures: AuthFailureLimit;
  /** The request's verified caller, shared with the route guard. */
  credentials: Credentials;
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
  const principal = await o.credentials.verify(req).catch(() => undefined);
  if (!principal) return o.authFailures.bucket(req.ip);
  if (principal.kind === "admin") return { key: `admin:${digestOf(principal, token)}`, max: o.adminPerMinute, windowMs: WINDOW_MS };
  return { ...perAddress, key: `${scope}:user:${digestOf(principal, principal.userId)}` };
}

function setHeaders(reply: FastifyReply, max: number, hit: Hit): void {
  reply.header("ratelimit-limit", max);
  reply.header("ratelimit-remaining", Math.max(0, max - hit.count));
  reply.header("ratelimit-reset", Math.max(1, Math.ceil(hit.resetMs / 1000)));
}

/**
 * Adds the limiter to `app` (the root instance, after CORS, before the routes): an onRequest hook, so it
 * runs before the guard's preParsing hook and before the body is read, and a request over its budget costs
 * one authentication (kept for the guard) and one counter hit.
 */
export function registerRateLimits(app: FastifyInstance, options: RateLimitOptions): void {
  app.addHook("onRequest", async (req, reply) => {
    const bucket = await bucketOf(req, options);
    if (!bucket) return;
    const hit = await options.counter.hit(bucket.key, bucket.windowMs);
    setHeaders(reply, bucket.max, hit);
    if (hit.count <= bucket.max) return;
    const seconds = Math.max(1, Math.ceil(hit.resetMs / 1000));
    reply.header("retry-after", seconds);
    return sendProblem(reply, problem("HERALD_RATE_LIMITED", `Rate limit exceeded; retry in ${seconds} s`));
  });
}
