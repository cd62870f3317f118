/** Route helpers that resolve the caller; the mapping to 401/403 lives in errors. */
import type { FastifyRequest } from "fastify";
import { type Principal, tokenFromHeaders } from "../auth/index.js";
import { forbidden } from "../errors/index.js";

const principals = new WeakMap<FastifyRequest, Principal>();

export async function principalOf(req: FastifyRequest): Promise<Principal> {
  const known = principals.get(req);
  if (known) return known;
  const principal = await req.server.services.auth.authenticate(tokenFromHeaders(req.headers));
  principals.set(req, principal);
  return principal;
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
