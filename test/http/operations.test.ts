/**
 * Operations and request logs: /ready tells an anonymous caller only that the
 * database is unavailable (the detail goes to the log), and request logs never
 * carry a query string (a WebSocket client's ?token= once ended up there).
 */
import type { AddressInfo } from "node:net";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/index.js";
import { openTestDatabase, type TestDatabase } from "../support/database.js";
import { TEST_SECRET } from "../support/herald.js";
import { appWithCapturedLogs, type CapturedApp } from "./harness.js";

describe("/ready with the database gone", () => {
  let db: TestDatabase;
  let h: CapturedApp;
  beforeAll(async () => {
    db = await openTestDatabase();
    h = await appWithCapturedLogs(db);
    await db.cleanup(); // a real database, closed: every ping now fails
  });
  afterAll(() => h.app.close());

  it("answers 503 with a generic problem body and logs the database's error", async () => {
    const res = await h.app.inject({ method: "GET", url: "/ready" });
    expect(res.statusCode).toBe(503);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    const body = res.json() as { detail: string; code: string };
    expect(body.code).toBe("HERALD_UNAVAILABLE");
    expect(body.detail).toBe("Not ready");
    // The database's own words are in the log, for the operator.
    const logged = h.lines.find((l) => l.msg === "not ready: database ping failed");
    expect(logged).toBeDefined();
    expect(JSON.stringify(logged)).toMatch(/"err":\{/);
  });
});

describe("request logs", () => {
  let db: TestDatabase;
  let h: CapturedApp;
  beforeAll(async () => {
    db = await openTestDatabase();
    h = await appWithCapturedLogs(db);
  });
  afterAll(async () => {
    await h.app.close();
    await db.cleanup();
  });

  it("log the path without the query string", async () => {
    const token = await mintToken(TEST_SECRET, { sub: "log-user", expiresIn: "1h" });
    const secret = `query-secret-${Date.now()}`;
    const res = await h.app.inject({ method: "GET", url: `/api/nothing-here?token=${secret}&x=1`, headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(404);
    const text = h.lines.map((l) => JSON.stringify(l)).join("\n");
    expect(text).not.toContain(secret);
    // The request was logged, by its path.
    const incoming = h.lines.find((l) => l.msg === "incoming request") as { req?: { url?: string } } | undefined;
    expect(incoming?.req?.url).toBe("/api/nothing-here");
  });

  it("a malformed %-escape in the path is answered with a generic problem that repeats neither the URL nor its ?token=", async () => {
    const traced = await appWithCapturedLogs(db, { LOG_LEVEL: "trace" });
    try {
      const secret = `pct-secret-${Date.now()}`;
      const res = await traced.app.inject({ method: "GET", url: `/api/notifications%zz?token=${secret}` });
      expect(res.statusCode).toBe(400);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ code: "HERALD_VALIDATION", status: 400 });
      expect(res.body).not.toContain(secret);
      expect(res.body).not.toContain("%zz");
      expect(traced.lines.map((l) => JSON.stringify(l)).join("\n")).not.toContain(secret);
    } finally {
      await traced.app.close();
    }
  });

  it("a request Node cannot parse is logged (at trace) without its raw bytes: they carry the query's and the header's tokens", async () => {
    const traced = await appWithCapturedLogs(db, { LOG_LEVEL: "trace" });
    try {
      await traced.app.listen({ port: 0, host: "127.0.0.1" });
      const { port } = traced.app.server.address() as AddressInfo;
      const secret = `raw-secret-${Date.now()}`;
      // Content-Length with Transfer-Encoding: Node's parser refuses it, Fastify logs a "client error".
      const answer = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1", () =>
          s.write(`GET /api/notifications?token=${secret} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`),
        );
        let out = "";
        s.on("data", (d) => (out += d.toString("latin1")));
        s.on("close", () => resolve(out));
        s.on("error", reject);
      });
      expect(answer).toMatch(/^HTTP\/1.1 400/);
      const logged = traced.lines.find((l) => l.msg === "client error");
      expect(logged).toBeDefined();
      const text = traced.lines.map((l) => JSON.stringify(l)).join("\n");
      expect(text).not.toContain("rawPacket");
      expect(text).not.toContain(secret);
      expect(JSON.stringify(logged)).toContain("HPE_INVALID_TRANSFER_ENCODING"); // what went wrong is still there
    } finally {
      await traced.app.close();
    }
  });
});
