/**
 * Operations and request logs: /ready tells an anonymous caller only that the
 * database is unavailable (the detail goes to the log), and request logs never
 * carry a query string (a WebSocket client's ?token= once ended up there).
 */
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
});
