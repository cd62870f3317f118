/** Route helpers that resolve the caller; the mapping to 401/403 lives in errors. */
import type { FastifyRequest } from "fastify";
import { type Authenticator, type Principal, tokenFromHeaders } from "../auth/index.js";
import { forbidden } from "../errors/index.js";

// One authentication per request, shared by the rate limiter and the route (a failure included).
const principals = new WeakMap<FastifyRequest, Promise<Principal>>();
/**
 * Verified tokens, per authenticator, until they expire: a flood of one valid token is counted (and
 * refused) at the cost of a map lookup, not a signature check each time. Tokens are stateless (no
 * revocation) and API keys change only with a restart, so the cache changes no verdict. Failures are
 * not kept (garbage would fill it).
 */
const verified = new WeakMap<Authenticator, Map<string, Principal>>();
const VERIFIED_MAX = 10_000;

async function authenticate(auth: Authenticator, token: string | undefined): Promise<Principal> {
  let cache = verified.get(auth);
  if (!cache) verified.set(auth, (cache = new Map()));
  const known = token === undefined ? undefined : cache.get(token);
  if (known && (known.expiresAt === undefined || known.expiresAt > Date.now())) return known;
  const principal = await auth.authenticate(token);
  if (token !== undefined) {
    if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value!);
    cache.set(token, principal);
  }
  return principal;
}

export function principalOf(req: FastifyRequest): Promise<Principal> {
  let known = principals.get(req);
  if (!known) {
    known = authenticate(req.server.services.auth, tokenFromHeaders(req.headers));
    known.catch(() => undefined); // whoever awaits it sees the rejection; no unhandled one meanwhile
    principals.set(req, known);
  }
  return known;
}

/** The provider's user id; an admin credential is refused (admins act through admin routes). */
export async function requireProvider(req: FastifyRequest): Promise<string> {
  const p = await principalOf(req);
  if (p.kind !== "provider") throw forbidden("This route is for providers; use a provider token");
  return p.userId;
}

export async function requireAdmin(req: FastifyRequest): Promise<void> {
  const p = await principalOf(req);
  if (p.kind !== "admin") throw forbidden("Admin credential required");
}
