/**
 * What a verified token may claim: a bounded lifetime (iat required, exp - iat
 * at most the configured maximum, iat not in the future), and admin rights
 * from an identity provider only through the configured claim.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthOptions, createAuthenticator, mintToken } from "../../src/auth/index.js";

const SECRET = "token-claims-secret-that-is-long-enough-0123456789";
const DAY = 86_400;
const now = () => Math.floor(Date.now() / 1000);
const hs = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));

describe("token lifetime", () => {
  const auth = createAuthenticator({ secret: SECRET, maxTokenLifetimeSeconds: 30 * DAY });

  it("refuses a token that expires in the year 5138", async () => {
    await expect(auth.authenticate(await hs({ sub: "u", iat: now(), exp: 99_999_999_999 }))).rejects.toMatchObject({ code: "HERALD_UNAUTHENTICATED" });
  });

  it("refuses a token without iat", async () => {
    await expect(auth.authenticate(await hs({ sub: "u", exp: now() + 3600 }))).rejects.toMatchObject({ code: "HERALD_UNAUTHENTICATED" });
  });

  it("refuses exp - iat beyond the maximum, accepts it at the maximum", async () => {
    const iat = now() - 10;
    await expect(auth.authenticate(await hs({ sub: "u", iat, exp: iat + 30 * DAY + 1 }))).rejects.toMatchObject({ code: "HERALD_UNAUTHENTICATED" });
    expect(await auth.authenticate(await hs({ sub: "u", iat, exp: iat + 30 * DAY }))).toMatchObject({ kind: "provider", userId: "u" });
  });

  it("refuses iat in the future beyond a minute of clock skew, allows a little", async () => {
    await expect(auth.authenticate(await hs({ sub: "u", iat: now() + 3600, exp: now() + 7200 }))).rejects.toMatchObject({ code: "HERALD_UNAUTHENTICATED" });
    expect(await auth.authenticate(await hs({ sub: "u", iat: now() + 20, exp: now() + 3600 }))).toMatchObject({ kind: "provider" });
  });

  it("follows a configured maximum, and mintToken's tokens (with iat) pass", async () => {
    const short = createAuthenticator({ secret: SECRET, maxTokenLifetimeSeconds: 3600 });
    await expect(short.authenticate(await mintToken(SECRET, { sub: "u", expiresIn: "2h" }))).rejects.toMatchObject({ code: "HERALD_UNAUTHENTICATED" });
    expect(await short.authenticate(await mintToken(SECRET, { sub: "u", expiresIn: "1h" }))).toMatchObject({ kind: "provider" });
    expect(await auth.authenticate(await mintToken(SECRET, { sub: "a", role: "admin", expiresIn: "30d" }))).toMatchObject({ kind: "admin" });
  });
});

describe("admin rights from a JWKS identity provider", () => {
  let server: Server;
  let key: CryptoKey;
  let jwksUrl: string;
  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    key = pair.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    server = createServer((_req, res) => res.setHeader("content-type", "application/json").end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const rs = (claims: Record<string, unknown>) =>
    new SignJWT({ iat: now(), exp: now() + 3600, ...claims }).setProtectedHeader({ alg: "RS256", kid: "k1" }).sign(key);
  const withJwks = (extra: Partial<AuthOptions> = {}) => createAuthenticator({ jwksUrl, secret: SECRET, ...extra });

  it("gives no admin to an IdP token claiming role admin when no admin claim is configured", async () => {
    expect(await withJwks().authenticate(await rs({ sub: "idp-user", role: "admin" }))).toMatchObject({ kind: "provider", userId: "idp-user" });
  });

  it("still makes HS256 role-admin tokens minted with JWT_SECRET admins", async () => {
    expect(await withJwks().authenticate(await mintToken(SECRET, { sub: "ops", role: "admin" }))).toMatchObject({ kind: "admin", subject: "ops" });
  });

  it("makes admins of IdP tokens carrying the configured claim, as a value or in an array", async () => {
    const auth = withJwks({ adminClaim: { claim: "https://example.com/roles", value: "herald-admin" } });
    expect(await auth.authenticate(await rs({ sub: "a1", "https://example.com/roles": ["viewer", "herald-admin"] }))).toMatchObject({ kind: "admin", subject: "a1" });
    expect(await auth.authenticate(await rs({ sub: "a2", "https://example.com/roles": "herald-admin" }))).toMatchObject({ kind: "admin" });
    expect(await auth.authenticate(await rs({ sub: "p1", "https://example.com/roles": ["viewer"], role: "admin" }))).toMatchObject({ kind: "provider", userId: "p1" });
  });

  it("reads a dotted path when no claim has that exact name (realm_access.roles)", async () => {
    const auth = withJwks({ adminClaim: { claim: "realm_access.roles", value: "herald-admin" } });
    expect(await auth.authenticate(await rs({ sub: "k1", realm_access: { roles: ["herald-admin"] } }))).toMatchObject({ kind: "admin" });
    expect(await auth.authenticate(await rs({ sub: "k2", realm_access: { roles: ["user"] } }))).toMatchObject({ kind: "provider" });
  });
});
