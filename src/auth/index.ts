/**
 * Who is calling: a provider (JWT with `sub`) or an admin (an HS256 JWT with
 * `role: "admin"`, a JWKS token carrying the configured admin claim, or an
 * API key from HERALD_API_KEYS). Used by REST and by the WebSocket handshake
 * alike.
 */
import { createHash, randomBytes, timingSafeEqual, webcrypto } from "node:crypto";
import path from "node:path";
import { SignJWT, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { readOrCreateSecretFile } from "../config/index.js";
import { isStorableText } from "../db/index.js";
import { HeraldError, unauthenticated } from "../errors/index.js";

export type Principal =
  | { kind: "provider"; userId: string; expiresAt: number }
  | { kind: "admin"; subject: string; expiresAt: number | undefined };

export interface AuthOptions {
  /** HS256 secret. */
  secret?: string | undefined;
  /** RS256/ES256 keys fetched from a JWKS endpoint. */
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  apiKeys?: readonly string[];
  /** Longest accepted exp - iat, in seconds (default 30 days): a socket lives no longer than its token. */
  maxTokenLifetimeSeconds?: number;
  /**
   * What makes a JWKS-issued token an admin (claim equal to, or an array
   * containing, value). Unset: none is; an identity provider's `role` claim
   * belongs to other applications too.
   */
  adminClaim?: { claim: string; value: string } | undefined;
}

export interface Authenticator {
  /** Resolves the principal of a bearer token or API key; rejects with HERALD_UNAUTHENTICATED. */
  authenticate(token: string | undefined): Promise<Principal>;
}

const MAX_TOKEN_LENGTH = 8192;
const DEFAULT_MAX_LIFETIME_SECONDS = 30 * 86_400;
/** Clocks of the token's issuer and ours may disagree by this much. */
const CLOCK_SKEW_SECONDS = 60;

export function createAuthenticator(options: AuthOptions): Authenticator {
  const secretBytes = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  // Imported once: given raw bytes, jose imports the HMAC key again on every verify (about half its cost).
  const secret = secretBytes ? webcrypto.subtle.importKey("raw", secretBytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]) : undefined;
  const jwks: JWTVerifyGetKey | undefined = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  const keyDigests = (options.apiKeys ?? []).map(digest);
  const maxLifetime = options.maxTokenLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS;
  const verifyOptions = {
    requiredClaims: ["exp", "iat"],
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };

  return {
    async authenticate(token) {
      if (!token) throw unauthenticated();
      if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("Invalid token");
      const d = digest(token);
      if (keyDigests.some((k) => timingSafeEqual(k, d))) {
        return { kind: "admin", subject: "api-key", expiresAt: undefined };
      }
      let payload: Record<string, unknown>;
      let fromJwks = false;
      try {
        if (secret && (!jwks || headerAlg(token) === "HS256")) {
          payload = (await jwtVerify(token, await secret, { ...verifyOptions, algorithms: ["HS256"] })).payload;
        } else if (jwks) {
          payload = (await jwtVerify(token, jwks, { ...verifyOptions, algorithms: ["RS256", "ES256"] })).payload;
          fromJwks = true;
        } else {
          throw unauthenticated("Invalid token");
        }
      } catch (err) {
        if (err instanceof HeraldError) throw err;
        if (err instanceof joseErrors.JWTExpired) throw unauthenticated("Token expired");
        throw unauthenticated("Invalid token");
      }
      // jose checked both are numbers; exp in the past was refused above.
      const exp = payload.exp as number;
      const iat = payload.iat as number;
      if (exp - iat > maxLifetime) throw unauthenticated("Token lifetime exceeds the maximum");
      if (iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) throw unauthenticated("Token issued in the future");
      if (fromJwks ? options.adminClaim !== undefined && hasClaim(payload, options.adminClaim) : payload.role === "admin") {
        return { kind: "admin", subject: typeof payload.sub === "string" ? payload.sub : "admin", expiresAt: exp * 1000 };
      }
      if (typeof payload.sub !== "string" || payload.sub.length === 0 || payload.sub.length > 255) {
        throw unauthenticated("Token has no subject");
      }
      // A lone surrogate reaches PostgreSQL as U+FFFD, so "x\udc00" would read the inbox of "x\ufffd"; a NUL cannot be stored.
      if (!isStorableText(payload.sub)) throw unauthenticated("Token subject is not storable text");
      return { kind: "provider", userId: payload.sub, expiresAt: exp * 1000 };
    },
  };
}

/** The claim equals the value or is an array holding it; a dotted name is a path when no claim has that exact name. */
function hasClaim(payload: Record<string, unknown>, { claim, value }: { claim: string; value: string }): boolean {
  let found: unknown = payload[claim];
  if (found === undefined && claim.includes(".")) {
    found = claim.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), payload);
  }
  return Array.isArray(found) ? found.includes(value) : found === value;
}

function headerAlg(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8")) as { alg?: unknown };
    return typeof header.alg === "string" ? header.alg : undefined;
  } catch {
    return undefined;
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

export interface MintOptions {
  sub: string;
  role?: "admin" | "provider";
  /** Lifetime, e.g. "30d", "1h" (jose syntax) or seconds. */
  expiresIn?: string | number;
  issuer?: string | undefined;
  audience?: string | undefined;
}

/** Signs an HS256 token; used by the CLI, the demo tokens printed at start and tests. */
export async function mintToken(secret: string, options: MintOptions): Promise<string> {
  const jwt = new SignJWT(options.role === "admin" ? { role: "admin" } : {})
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(
      typeof options.expiresIn === "number" ? Math.floor(Date.now() / 1000) + options.expiresIn : (options.expiresIn ?? "30d"),
    );
  if (options.issuer) jwt.setIssuer(options.issuer);
  if (options.audience) jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

/**
 * Returns the JWT secret kept in `dataDir/jwt-secret`, creating it (mode 600)
 * on first use. Only for development: production must set JWT_SECRET.
 */
export function ensureJwtSecret(dataDir: string): { secret: string; created: boolean } {
  const { text, created } = readOrCreateSecretFile(path.resolve(dataDir, "jwt-secret"), () => `${randomBytes(48).toString("base64url")}\n`);
  return { secret: text.trim(), created };
}

/** Extracts a bearer token from an Authorization header, or an API key header. */
export function tokenFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  const key = headers["x-api-key"];
  return typeof key === "string" ? key : undefined;
}
