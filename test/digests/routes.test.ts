/** The digest REST routes on a whole Herald, mailing through a real SMTP server on loopback. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { type SmtpSink, addNotification, addUser, startSmtpSink } from "./support.js";

describe("digest routes", () => {
  let sink: SmtpSink;
  let h: TestHerald;
  let token: string;

  beforeAll(async () => {
    sink = await startSmtpSink();
    h = await startTestHerald({ env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(sink.port), APP_URL: "https://app.example.test" } });
    await addUser(h.database, "prov", { timezone: "Europe/Paris" });
    await addNotification(h.database, "prov", new Date(Date.now() - 60_000), { title: "Booking <b>42</b>" });
    token = await h.tokenFor("prov");
  });
  afterAll(async () => {
    await h?.stop();
    await sink?.close();
  });

  const call = (method: string, path: string, auth: string, body?: unknown) =>
    fetch(`${h.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${auth}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("POST /api/digests/test mails the caller now and returns the recorded digest", async () => {
    const res = await call("POST", "/api/digests/test", token, { frequency: "daily" });
    expect(res.status).toBe(200);
    const digest = (await res.json()) as Record<string, unknown>;
    expect(digest).toMatchObject({ userId: "prov", status: "sent", isTest: true, notificationCount: 1, emailAddress: "prov@example.test" });
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.subject).toBe("[Test] You have 1 new notification");
    expect(String(sink.messages[0]!.html)).toContain("Booking &lt;b&gt;42&lt;/b&gt;");
  });

  it("GET /api/digests/stats and GET /api/digests show the caller's own digests", async () => {
    const stats = await call("GET", "/api/digests/stats", token);
    expect(stats.status).toBe(200);
    expect(await stats.json()).toMatchObject({ totalSent: 0, totalFailed: 0, totalTest: 1, timezone: "Europe/Paris", frequency: "daily" });
    const list = await call("GET", "/api/digests?limit=10", token);
    expect(list.status).toBe(200);
    const body = (await list.json()) as { digests: { userId: string }[]; total: number };
    expect(body.total).toBe(1);
    expect(body.digests.map((d) => d.userId)).toEqual(["prov"]);
    // Another provider sees none of them.
    const other = await call("GET", "/api/digests", await h.tokenFor("someone-else"));
    expect(await other.json()).toEqual({ digests: [], total: 0 });
  });

  it("rejects bad input with 400 and admin views with a provider token with 403", async () => {
    expect((await call("POST", "/api/digests/test", token, { frequency: "monthly" })).status).toBe(400);
    expect((await call("POST", "/api/digests/test", token, { frequency: "daily", extra: 1 })).status).toBe(400);
    expect((await call("GET", "/api/digests?limit=0", token)).status).toBe(400);
    expect((await call("GET", "/api/admin/users/prov/digests", token)).status).toBe(403);
    expect((await fetch(`${h.baseUrl}/api/digests/stats`)).status).toBe(401);
  });

  it("admin reads any user's digests and stats; an unknown user is 404", async () => {
    const list = await call("GET", "/api/admin/users/prov/digests", h.adminToken);
    expect(list.status).toBe(200);
    expect(((await list.json()) as { total: number }).total).toBe(1);
    const stats = await call("GET", "/api/admin/users/prov/digests/stats", h.adminToken);
    expect(await stats.json()).toMatchObject({ totalSent: 0, totalTest: 1 });
    expect((await call("GET", "/api/admin/users/ghost/digests", h.adminToken)).status).toBe(404);
    expect((await call("GET", "/api/admin/users/ghost/digests/stats", h.adminToken)).status).toBe(404);
  });
});
