/**
 * The route guard (src/http/auth.ts) and the order of the phases it relies
 * on: the limiter (onRequest) verifies a credential and the guard
 * (preParsing) reuses that verdict, so a request costs one verification; both
 * answer before the body is read; a CORS preflight is answered without a
 * credential; and a route under /api that does not say who may call it keeps
 * the app from starting.
 */
import { Registry } from "prom-client";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Authenticator, createAuthenticator, mintToken } from "../../src/auth/index.js";
import { loadConfig } from "../../src/config/index.js";
import { buildHttpApp, type HttpServices } from "../../src/http/index.js";
import { openTestDatabase, type TestDatabase } from "../support/database.js";
import { TEST_SECRET } from "../support/herald.js";
import { appWithCapturedLogs, type CapturedApp } from "./harness.js";

/** The test authenticator, counting the tokens it is asked to verify. */
function counting(): Authenticator & { calls: number } {
  const real = createAuthenticator({ secret: TEST_SECRET, apiKeys: ["guard-api-key"] });
  const counted = {
    calls: 0,
    authenticate(token: string | undefined) {
      counted.calls += 1;
      return real.authenticate(token);
    },
  };
  return counted;
}

let db: TestDatabase;
let h: CapturedApp;
const auth = counting();
beforeAll(async () => {
  db = await openTestDatabase();
  h = await appWithCapturedLogs(db, { HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: "3", CORS_ORIGINS: "https://app.example.com" }, auth);
});
afterAll(async () => {
  await h?.app.close();
  await db?.cleanup();
});

const problemOf = (res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) => ({
  status: res.statusCode,
  type: String(res.headers["content-type"]).split(";")[0],
  code: (res.json() as { code?: string }).code,
});

describe("one verification per request, shared by the limiter and the guard", () => {
  it("a bad credential is verified once, and the guard answers 401 with a problem body", async () => {
    const before = auth.calls;
    const res = await h.app.inject({ method: "GET", url: "/api/users/someone", headers: { authorization: "Bearer not-a-token" } });
    expect(problemOf(res)).toEqual({ status: 401, type: "application/problem+json", code: "HERALD_UNAUTHENTICATED" });
    expect(auth.calls - before).toBe(1);
  });

  it("the wrong kind of credential is verified once and answered 403; a valid token is then not verified again", async () => {
    const token = await mintToken(TEST_SECRET, { sub: "guard-provider" });
    const before = auth.calls;
    const first = await h.app.inject({ method: "GET", url: "/api/users/someone", headers: { authorization: `Bearer ${token}` } });
    expect(problemOf(first)).toEqual({ status: 403, type: "application/problem+json", code: "HERALD_FORBIDDEN" });
    expect(auth.calls - before).toBe(1);
    await h.app.inject({ method: "GET", url: "/api/users/someone", headers: { authorization: `Bearer ${token}` } });
    expect(auth.calls - before).toBe(1);
  });
});

describe("both answer before the body is read", () => {
  const oversized = JSON.stringify({ title: "x".repeat(300 * 1024) }); // over the 256 KiB default

  it("no credential and an oversized or malformed body: 401, not 413 or 400", async () => {
    for (const payload of [oversized, "{not json"]) {
      const res = await h.app.inject({ method: "POST", url: "/api/templates", headers: { "content-type": "application/json" }, payload });
      expect(problemOf(res)).toMatchObject({ status: 401, code: "HERALD_UNAUTHENTICATED" });
    }
  });

  it("a failing credential past the address's budget with an oversized body: 429 from the limiter", async () => {
    const send = () =>
      h.app.inject({
        method: "POST",
        url: "/api/templates",
        remoteAddress: "192.0.2.44",
        headers: { authorization: "Bearer wrong", "content-type": "application/json" },
        payload: oversized,
      });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send()).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

describe("routes open to anyone", () => {
  it("a CORS preflight of a guarded route is answered without a credential", async () => {
    const res = await h.app.inject({
      method: "OPTIONS",
      url: "/api/users/someone",
      headers: { origin: "https://app.example.com", "access-control-request-method": "PUT", "access-control-request-headers": "authorization" },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers["access-control-allow-origin"]).toBe("https://app.example.com");
  });

  it("a route with auth \"none\" (the OpenAPI document) answers without a credential", async () => {
    const res = await h.app.inject({ method: "GET", url: "/api/openapi.json" });
    expect(res.statusCode).toBe(200);
  });
});

describe("every /api route says who may call it", () => {
  it("a route under /api without config.auth keeps the app from being built", async () => {
    const services = {
      config: loadConfig({ NODE_ENV: "test", JWT_SECRET: TEST_SECRET }),
      database: db,
      auth: createAuthenticator({ secret: TEST_SECRET }),
      logger: pino({ level: "silent" }),
      metrics: new Registry(),
    } as unknown as HttpServices;
    const app = await buildHttpApp(services, { serveWeb: false });
    try {
      expect(() => app.get("/api/forgotten", async () => ({ ok: true }))).toThrow(/GET \/api\/forgotten does not say who may call it/);
      // Outside /api (operations, the web UI) no declaration is asked for.
      expect(() => app.get("/elsewhere", async () => ({ ok: true }))).not.toThrow();
    } finally {
      await app.close();
    }
  });
});
