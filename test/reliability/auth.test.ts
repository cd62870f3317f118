/**
 * Forged, stale and malformed credentials on REST and on the WebSocket
 * handshake alike: all refused with 401 (a problem body, or the upgrade
 * refused before any frame), never a 5xx, never a detail that helps an
 * attacker. A token that expires during a connection closes it (4001).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { constants, createHmac, sign as rawSign } from "node:crypto";
import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { mintToken } from "../../src/auth/index.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";
import { badInput } from "./support/figures.js";
import { call, isProblem } from "./support/rest.js";

const enc = (s: string) => new TextEncoder().encode(s);
const b64 = (o: unknown) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const ISSUER = "https://issuer.herald.test";
const AUDIENCE = "herald-api";

let plain: TestHerald;
let strict: TestHerald; // JWKS (RS256) + HS256 secret + issuer and audience configured
let jwksServer: Server;
let rsaPrivate: CryptoKey;
let rsaPublicPem: string;
let rsaPrivatePem: string;

beforeAll(async () => {
  const pair = await generateKeyPair("RS256", { extractable: true });
  rsaPrivate = pair.privateKey as CryptoKey;
  rsaPublicPem = await exportSPKI(pair.publicKey);
  rsaPrivatePem = await exportPKCS8(pair.privateKey);
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  jwksServer = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, "127.0.0.1", r));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  // Hundreds of bad tokens from one address: the verdict on each is the subject here, not the per-address limiter.
  const unthrottled = { HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: "1000000" };
  [plain, strict] = await Promise.all([
    startTestHerald({ env: unthrottled }),
    startTestHerald({ env: { ...unthrottled, JWKS_URL: jwksUrl, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), strict?.stop()]);
  await new Promise((r) => jwksServer?.close(r));
});

const hs = (claims: Record<string, unknown>, header: Record<string, unknown> = { alg: "HS256" }, secret = TEST_SECRET) =>
  new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(enc(secret));
/** HS256 by hand, for headers jose refuses to produce (an attacker is not bound by it). */
function hsRaw(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", TEST_SECRET).update(input).digest("base64url")}`;
}
/** PS256 by hand: WebCrypto will not use an RS256 key for PSS, an attacker's library will. */
function ps256(claims: Record<string, unknown>): string {
  const input = `${b64({ alg: "PS256", kid: "k1" })}.${b64(claims)}`;
  const sig = rawSign("sha256", Buffer.from(input), { key: rsaPrivatePem, padding: constants.RSA_PKCS1_PSS_PADDING });
  return `${input}.${sig.toString("base64url")}`;
}
/** An identity provider's token; `iat` is required, so it carries one. */
const rs = (claims: Record<string, unknown>, key: CryptoKey = rsaPrivate, alg = "RS256") =>
  new SignJWT({ iat: Math.floor(Date.now() / 1000), ...claims }).setProtectedHeader({ alg, kid: "k1" }).sign(key);

/** Tokens no configuration may accept. */
async function forgedTokens(): Promise<[string, string][]> {
  const good = await mintToken(TEST_SECRET, { sub: "victim" });
  const [head, , sig] = good.split(".");
  const other = await generateKeyPair("RS256");
  return [
    ["alg none with trailing dot", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "victim", exp: inAnHour() })}.`],
    ["alg none without trailing dot", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "victim", exp: inAnHour() })}`],
    ["alg None, admin role", `${b64({ alg: "None" })}.${b64({ sub: "x", role: "admin", exp: inAnHour() })}.`],
    ["HS256 signed with the RS public key", await hs({ sub: "victim", exp: inAnHour(), iss: ISSUER, aud: AUDIENCE }, { alg: "HS256", kid: "k1" }, rsaPublicPem)],
    ["HS512 (off the allow-list) with the right secret", await hs({ sub: "victim", exp: inAnHour() }, { alg: "HS512" })],
    ["HS384 (off the allow-list) with the right secret", await hs({ sub: "victim", exp: inAnHour() }, { alg: "HS384" })],
    ["PS256 (off the allow-list) with the JWKS key", ps256({ sub: "victim", exp: inAnHour(), iss: ISSUER, aud: AUDIENCE })],
    ["RS256 signed by an unknown key", await rs({ sub: "victim", exp: inAnHour(), iss: ISSUER, aud: AUDIENCE }, other.privateKey as CryptoKey)],
    ["HS256 with a wrong secret", await hs({ sub: "victim", exp: inAnHour() }, { alg: "HS256" }, "a-wrong-secret-that-is-long-enough-for-hs256")],
    ["sub swapped under an old signature", `${head}.${b64({ sub: "someone-else", exp: inAnHour() })}.${sig}`],
    ["role admin added under an old signature", `${head}.${b64({ sub: "victim", role: "admin", exp: inAnHour() })}.${sig}`],
    ["expired", await hs({ sub: "victim", exp: Math.floor(Date.now() / 1000) - 120 })],
    ["nbf in the future", await hs({ sub: "victim", exp: inAnHour(), nbf: inAnHour() - 60 })],
    ["missing exp", await hs({ sub: "victim" })],
    ["exp in the year 5138", await hs({ sub: "victim", iat: inAnHour() - 3600, exp: 99_999_999_999 })],
    ["exp beyond the maximum lifetime (31 days)", await hs({ sub: "victim", iat: inAnHour() - 3600, exp: inAnHour() + 31 * 86_400 })],
    ["missing iat", await hs({ sub: "victim", exp: inAnHour() })],
    ["iat an hour in the future", await hs({ sub: "victim", iat: inAnHour(), exp: inAnHour() + 60 })],
    ["exp as a string", await hs({ sub: "victim", exp: String(inAnHour()) })],
    ["empty sub", await hs({ sub: "", exp: inAnHour() })],
    ["numeric sub", await hs({ sub: 42, exp: inAnHour() })],
    ["sub of 5,000 characters", await hs({ sub: "u".repeat(5000), exp: inAnHour() })],
    // A lone surrogate reached PostgreSQL as U+FFFD: "victim\udc00" read the inbox of "victim\ufffd".
    ["sub with a lone low surrogate", await hs({ sub: "victim\udc00", iat: inAnHour() - 3600, exp: inAnHour() })],
    ["sub with a lone high surrogate", await hs({ sub: "victim\ud800", iat: inAnHour() - 3600, exp: inAnHour() })],
    ["sub with a NUL", await hs({ sub: "vic\u0000tim", iat: inAnHour() - 3600, exp: inAnHour() })],
    ["oversized token (9 KiB)", await hs({ sub: "victim", exp: inAnHour(), pad: "x".repeat(9 * 1024) })],
    ["crit header not understood", hsRaw({ alg: "HS256", crit: ["x-herald"], "x-herald": 1 }, { sub: "victim", exp: inAnHour() })],
    ["malformed: one segment", "not-a-jwt"],
    ["malformed: empty segments", ".."],
    ["malformed: four segments", `${good}.extra`],
    ["malformed: header not JSON", `${b64("{{{")}.${b64({ sub: "victim" })}.${sig}`],
    ["malformed: header a JSON array", `${b64([1, 2])}.${b64({ sub: "victim" })}.${sig}`],
    ["malformed: payload not JSON", `${head}.${b64("nope")}.${sig}`],
    ["malformed: non-base64url characters", `${head}.$$$.${sig}`],
    ["malformed: latin-1 bytes", "\u00ff\u00fe.\u00e9\u00e8.\u00fc"],
  ];
}

/** Tokens valid for the plain server but not for one with issuer/audience configured. */
async function wrongIssuerAudience(): Promise<[string, string][]> {
  return [
    ["RS256 with a wrong iss", await rs({ sub: "victim", exp: inAnHour(), iss: "https://evil.test", aud: AUDIENCE })],
    ["RS256 with a wrong aud", await rs({ sub: "victim", exp: inAnHour(), iss: ISSUER, aud: "other-api" })],
    ["RS256 without iss and aud", await rs({ sub: "victim", exp: inAnHour() })],
    ["HS256 without iss and aud", await mintToken(TEST_SECRET, { sub: "victim" })],
  ];
}

/** The upgrade's HTTP status (101 when it opened). */
function handshake(h: TestHerald, token: string, via: "query" | "protocol"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = via === "query" ? `${h.wsUrl}/ws?token=${encodeURIComponent(token)}` : `${h.wsUrl}/ws`;
    const ws = new WebSocket(url, via === "protocol" ? ["herald.v1", `bearer.${token}`] : undefined);
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on("open", () => {
      ws.close();
      resolve({ status: 101, body: "" });
    });
    ws.on("error", (err) => (err.message.includes("Unexpected server response") ? undefined : reject(err)));
  });
}

function expectNoLeak(text: string): void {
  expect(text).not.toContain(TEST_SECRET);
  expect(text).not.toMatch(/at .+\.(ts|js):\d+|stack|node_modules|BEGIN PUBLIC KEY/i);
}

async function expectRefusedEverywhere(h: TestHerald, name: string, token: string): Promise<void> {
  const provider = await call(h.baseUrl, "GET", "/api/notifications", { token });
  expect(provider.status, `${name} on a provider route`).toBe(401);
  expect(isProblem(provider, 401), name).toBe(true);
  expectNoLeak(provider.text);
  const admin = await call(h.baseUrl, "POST", "/api/notifications", {
    token,
    body: { userId: "victim", type: "new_message", title: "t", message: "m" },
  });
  expect(admin.status, `${name} on an admin route`).toBe(401);
  expect(isProblem(admin, 401), name).toBe(true);
  // The WebSocket handshake through both token transports. A token that is
  // not a legal sub-protocol token is refused by the client library itself.
  const q = await handshake(h, token, "query");
  expect(q.status, `${name} on the upgrade (?token=)`).toBe(401);
  expectNoLeak(q.body);
  if (/^[\x21-\x7e]+$/.test(token) && !/[()<>@,;:\\"/[\]?={}]/.test(token)) {
    const p = await handshake(h, token, "protocol");
    expect(p.status, `${name} on the upgrade (sub-protocol)`).toBe(401);
  }
}

describe("forged, stale and malformed tokens", () => {
  it("a valid token is accepted on REST and on the upgrade (the control)", async () => {
    for (const [h, token] of [
      [plain, await plain.tokenFor("victim")],
      [strict, await rs({ sub: "victim", exp: inAnHour(), iss: ISSUER, aud: AUDIENCE })],
    ] as const) {
      expect((await call(h.baseUrl, "GET", "/api/notifications", { token })).status).toBe(200);
      expect((await handshake(h, token, "query")).status).toBe(101);
      expect((await handshake(h, token, "protocol")).status).toBe(101);
    }
  });

  it("every forged or malformed token gets 401 on REST and on the WebSocket handshake, on both configurations", async () => {
    const tokens = await forgedTokens();
    for (const h of [plain, strict]) for (const [name, token] of tokens) await expectRefusedEverywhere(h, name, token);
    badInput("token", tokens.length * 2);
  });

  it("a wrong iss or aud (or none) is refused when issuer and audience are configured", async () => {
    const tokens = await wrongIssuerAudience();
    for (const [name, token] of tokens) await expectRefusedEverywhere(strict, name, token);
    badInput("token", tokens.length);
  });

  it("an identity provider's token with role admin is no Herald admin unless JWT_ADMIN_CLAIM says so", async () => {
    const token = await rs({ sub: "idp-admin", role: "admin", exp: inAnHour(), iss: ISSUER, aud: AUDIENCE });
    const res = await call(strict.baseUrl, "POST", "/api/notifications", {
      token,
      body: { userId: "victim", type: "new_message", title: "t", message: "m" },
    });
    expect(res.status).toBe(403);
    expect(isProblem(res, 403)).toBe(true);
    badInput("token");
  });

  it("odd Authorization headers are 401 (or 431 for an enormous one), never 5xx", async () => {
    const headers: [string, string][] = [
      ["Bearer", "Bearer"],
      ["Bearer with spaces", "Bearer    "],
      ["Basic", `Basic ${Buffer.from("admin:admin").toString("base64")}`],
      ["two tokens", `Bearer a.b.c, Bearer d.e.f`],
      ["64 KiB token", `Bearer ${"a".repeat(64 * 1024)}`],
    ];
    for (const [name, value] of headers) {
      const a = await call(plain.baseUrl, "GET", "/api/notifications", { headers: { authorization: value } });
      expect([401, 431], name).toContain(a.status);
    }
    badInput("auth_header", headers.length);
    expect((await call(plain.baseUrl, "GET", "/health")).status).toBe(200);
  });

  it("a token that expires during a connection closes the socket with 4001", async () => {
    const token = await plain.tokenFor("expiring-user", 2);
    const ws = new WebSocket(`${plain.wsUrl}/ws?token=${encodeURIComponent(token)}`);
    const code = await new Promise<number>((resolve, reject) => {
      ws.on("close", (c) => resolve(c));
      ws.on("error", reject);
    });
    expect(code).toBe(4001);
    // And that token can no longer open a new one.
    expect((await handshake(plain, token, "query")).status).toBe(401);
  });
});
