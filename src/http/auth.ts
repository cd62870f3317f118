/**
 * Who may call each route, decided in one place. A route states it in its
 * config (`config: { auth: "provider" }`); every /api route must, or the app
 * refuses to start. The request lifecycle, by Fastify's public phases:
 *
 * 1. onRequest: the rate limiter (rate-limit.ts) verifies the credential to
 *    pick its bucket (a failed one spends the address's failed-authentication
 *    budget), so a flood is refused before anything else is done for it.
 * 2. preParsing: the guard below reuses that verdict (one verification per
 *    request) and answers 401 or 403 before the body is read: a bad body
 *    without a credential is a 401, not a 400. It leaves the principal on
 *    `req.principal` for the handler.
 *
 * CORS preflights are answered by @fastify/cors in onRequest, unauthenticated.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { LRUCache } from "lru-cache";
import { type Authenticator, type Principal, tokenFromHeaders } from "../auth/index.js";
import { forbidden } from "../errors/index.js";

/**
 * - provider: a provider token; an admin credential is refused (admins act through admin routes).
 * - admin: an admin token or API key.
 * - provider-or-admin: either; the handler tells them apart by `req.principal.kind`.
 * - none: anyone (the credential, if one is sent, still picks the rate-limit bucket).
 */
export type RouteAuth = "provider" | "admin" | "provider-or-admin" | "none";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may call the route; required on every /api route. */
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** The verified caller of a guarded route (config.auth other than "none"); null elsewhere. */
    principal: Principal | null;
  }
}

export interface Credentials {
  /** The request's principal; rejects with HERALD_UNAUTHENTICATED. Verified once per request, whoever asks first. */
  verify(req: FastifyRequest): Promise<Principal>;
}

/** Verified tokens kept at most (the least recently used dropped first). */
const VERIFIED_MAX = 10_000;

/**
 * Verifies requests' credentials with `auth`. Verified tokens are kept until they expire: a flood of one
 * valid token is counted (and refused) at the cost of a map lookup, not a signature check each time. Tokens
 * are stateless (no revocation) and API keys change only with a restart, so the cache changes no verdict.
 * Failures are not kept (garbage would fill it).
 */
export function createCredentials(auth: Authenticator, now: () => number = Date.now): Credentials {
  const verified = new LRUCache<string, Principal>({ max: VERIFIED_MAX, perf: { now }, ttlResolution: 0 });
  // One verification per request, shared by the limiter and the guard (a failure included).
  const perRequest = new WeakMap<FastifyRequest, Promise<Principal>>();

  async function authenticate(token: string | undefined): Promise<Principal> {
    const known = token === undefined ? undefined : verified.get(token);
    if (known) return known;
    const principal = await auth.authenticate(token);
    if (token !== undefined) {
      // Kept while now < expiresAt (lru-cache keeps an entry while its age <= ttl); an API key does not expire.
      const ttl = principal.expiresAt === undefined ? 0 : principal.expiresAt - now() - 1;
      if (principal.expiresAt === undefined || ttl > 0) verified.set(token, principal, { ttl });
    }
    return principal;
  }

  return {
    verify(req) {
      let known = perRequest.get(req);
      if (!known) {
        known = authenticate(tokenFromHeaders(req.headers));
        known.catch(() => undefined); // whoever awaits it sees the rejection; no unhandled one meanwhile
        perRequest.set(req, known);
      }
      return known;
    },
  };
}

/** The guard's verdict for `principal` on a route open to `access`: undefined when it may pass. */
function refusal(access: Exclude<RouteAuth, "none">, principal: Principal): Error | undefined {
  if (access === "provider" && principal.kind !== "provider") return forbidden("This route is for providers; use a provider token");
  if (access === "admin" && principal.kind !== "admin") return forbidden("Admin credential required");
  return undefined;
}

/**
 * Adds the guard to `app` (the root instance, before the routes): `req.principal`, the check that every
 * /api route says who may call it, and the preParsing hook that enforces it. A refusal is thrown to the
 * error handler, which answers it as a problem body (401 HERALD_UNAUTHENTICATED, 403 HERALD_FORBIDDEN).
 */
export function guardRoutes(app: FastifyInstance, credentials: Credentials): void {
  app.decorateRequest("principal", null);
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/api/") && route.config?.auth === undefined) {
      throw new Error(`${String(route.method)} ${route.url} does not say who may call it (config.auth)`);
    }
  });
  app.addHook("preParsing", async (req) => {
    const access = req.routeOptions.config.auth;
    if (access === undefined || access === "none") return;
    const principal = await credentials.verify(req);
    const refused = refusal(access, principal);
    if (refused) throw refused;
    req.principal = principal;
  });
}

/** The caller of a guarded route. */
export function callerOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error(`${req.method} ${req.routeOptions.url} reads its caller without config.auth`);
  return req.principal;
}

/** The provider calling a route with config.auth "provider". */
export function providerId(req: FastifyRequest): string {
  const caller = callerOf(req);
  if (caller.kind !== "provider") throw new Error(`${req.method} ${req.routeOptions.url} reads a provider's id without config.auth "provider"`);
  return caller.userId;
}
