/**
 * The admin acting for a user (#19.2): the directory listed by keyset pages,
 * a user's preferences read and changed with the provider route's validation,
 * a test digest mailed through a real SMTP server on loopback. Bad input is a
 * problem body and changes nothing; a provider token is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SmtpSink, startSmtpSink } from "../digests/support.js";
import { api, expectProblem, rowCounts } from "../notifications/api.js";
import type { NotificationPreferences } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

interface UserPage {
  users: { id: string; email: string | null }[];
  next: string | null;
}

describe("admin routes per user", () => {
  let sink: SmtpSink;
  let h: TestHerald;
  let call: ReturnType<typeof api>;
  /** 25 users, ids in byte order == any collation's order (lower-case letters and digits of one length). */
  const ids = Array.from({ length: 25 }, (_, i) => `u${String(i).padStart(2, "0")}`);

  beforeAll(async () => {
    sink = await startSmtpSink();
    h = await startTestHerald({ env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(sink.port) } });
    call = api(h);
    for (const id of [...ids].reverse()) {
      const email = id === "u07" ? "Zed.Person@Example.test" : `${id}@example.test`;
      expect((await call("PUT", `/api/users/${id}`, { token: h.adminToken, body: { email } })).status).toBe(200);
    }
  }, 120_000); // more than one Herald start's worth of work: embedded PGlite on a busy machine needs more than the default minute
  afterAll(async () => {
    await h?.stop();
    await sink?.close();
  });

  it("GET /api/users walks the directory in id order, page by page, each user once, and says when it ends", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=10&cursor=${encodeURIComponent(cursor)}` : "?limit=10";
      const res = await call<UserPage>("GET", `/api/users${query}`, { token: h.adminToken });
      expect(res.status).toBe(200);
      expect(res.body.users.length).toBeLessThanOrEqual(10);
      seen.push(...res.body.users.map((u) => u.id));
      cursor = res.body.next;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
  });

  it("a user added after a page was read does not shift the next page (keyset, not offset)", async () => {
    const first = await call<UserPage>("GET", "/api/users?limit=5", { token: h.adminToken });
    expect(first.body.users.map((u) => u.id)).toEqual(ids.slice(0, 5));
    expect((await call("PUT", "/api/users/u00a", { token: h.adminToken, body: {} })).status).toBe(200);
    const second = await call<UserPage>("GET", `/api/users?limit=5&cursor=${first.body.next}`, { token: h.adminToken });
    expect(second.body.users.map((u) => u.id)).toEqual(ids.slice(5, 10));
    expect((await call("DELETE", "/api/users/u00a", { token: h.adminToken })).status).toBe(204);
  });

  it("?q= keeps users whose id or e-mail (any case) starts with it", async () => {
    const byId = await call<UserPage>("GET", "/api/users?q=u1", { token: h.adminToken });
    expect(byId.body.users.map((u) => u.id)).toEqual(ids.filter((id) => id.startsWith("u1")));
    const byEmail = await call<UserPage>("GET", "/api/users?q=zed.", { token: h.adminToken });
    expect(byEmail.body).toEqual({ users: [expect.objectContaining({ id: "u07", email: "Zed.Person@Example.test" })], next: null });
  });

  it("refuses a limit outside 1..200, a forged cursor and unknown parameters, and provider tokens", async () => {
    for (const q of ["?limit=0", "?limit=201", "?limit=x", "?cursor=%2F%2F", "?cursor=not-a-cursor!", "?offset=3"]) {
      expectProblem(await call("GET", `/api/users${q}`, { token: h.adminToken }), 400, "HERALD_VALIDATION");
    }
    expect((await call("GET", "/api/users?limit=200", { token: h.adminToken })).status).toBe(200);
    expect((await call("GET", "/api/users", { token: await h.tokenFor("u01") })).status).toBe(403);
  });

  it("GET|PATCH /api/users/{id}/preferences read and change that user's preferences, as the user's own routes do", async () => {
    const admin = h.adminToken;
    const own = await h.tokenFor("u03");
    expect((await call<NotificationPreferences>("GET", "/api/users/u03/preferences", { token: admin })).body).toMatchObject({ userId: "u03", soundVolume: 70 });
    const patched = await call<NotificationPreferences>("PATCH", "/api/users/u03/preferences", { token: admin, body: { soundVolume: 5, quietHoursEnabled: true, quietHoursStart: "21:30" } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ userId: "u03", soundVolume: 5, quietHoursEnabled: true, quietHoursStart: "21:30" });
    // The user sees it at once (the cached copy was dropped), and another user is untouched.
    expect((await call<NotificationPreferences>("GET", "/api/preferences", { token: own })).body.soundVolume).toBe(5);
    expect((await call<NotificationPreferences>("GET", "/api/users/u04/preferences", { token: admin })).body.soundVolume).toBe(70);
  });

  it("a user whose token subject has a space (not a directory-style id) can still be read and erased", async () => {
    const id = "a b\u00a0c";
    const own = await h.tokenFor(id);
    expect((await call("PATCH", "/api/preferences", { token: own, body: { soundVolume: 9 } })).status).toBe(200);
    const path = `/api/users/${encodeURIComponent(id)}`;
    expect((await call<NotificationPreferences>("GET", `${path}/preferences`, { token: h.adminToken })).body.soundVolume).toBe(9);
    expect((await call("DELETE", path, { token: h.adminToken })).status).toBe(204);
    expect((await call("DELETE", path, { token: h.adminToken })).status).toBe(404);
    // Creating such an id in the directory is still refused (PUT keeps the stricter rule).
    expect((await call("PUT", path, { token: h.adminToken, body: {} })).status).toBe(400);
  });

  it("PATCH /api/users/{id}/preferences refuses what PATCH /api/preferences refuses, and changes nothing", async () => {
    const before = await rowCounts(h);
    for (const body of [{ soundVolume: 101 }, { quietHoursStart: "25:00" }, { frequency: "sometimes" }, { unknownField: true }]) {
      expectProblem(await call("PATCH", "/api/users/u05/preferences", { token: h.adminToken, body }), 400, "HERALD_VALIDATION");
      expectProblem(await call("PATCH", "/api/preferences", { token: await h.tokenFor("u05"), body }), 400, "HERALD_VALIDATION");
    }
    expect(await rowCounts(h)).toEqual(before);
    expect((await call("PATCH", "/api/users/u05/preferences", { token: await h.tokenFor("u05"), body: { soundVolume: 1 } })).status).toBe(403);
  });

  it("POST /api/users/{id}/digests/test mails that user a test digest (frequency from the body, daily without one)", async () => {
    const weekly = await call<{ userId: string; frequency: string; status: string; isTest: boolean }>("POST", "/api/users/u06/digests/test", {
      token: h.adminToken,
      body: { frequency: "weekly" },
    });
    expect(weekly.status).toBe(200);
    expect(weekly.body).toMatchObject({ userId: "u06", frequency: "weekly", status: "sent", isTest: true });
    const daily = await call<{ frequency: string }>("POST", "/api/users/u06/digests/test", { token: h.adminToken, body: {} });
    expect(daily.body).toMatchObject({ frequency: "daily" });
    // No body and no content type at all.
    const bare = await call<{ frequency: string }>("POST", "/api/users/u06/digests/test", { token: h.adminToken });
    expect(bare.status).toBe(200);
    expect(bare.body).toMatchObject({ frequency: "daily" });
    await sink.waitFor(3);
    expect(sink.messages.map((m) => (m.to && !Array.isArray(m.to) ? m.to.text : ""))).toEqual(["u06@example.test", "u06@example.test", "u06@example.test"]);
  });

  it("POST /api/users/{id}/digests/test: an unknown user is a 404, a bad frequency a 400, a provider token a 403", async () => {
    expectProblem(await call("POST", "/api/users/nobody/digests/test", { token: h.adminToken, body: {} }), 404, "HERALD_NOT_FOUND");
    expectProblem(await call("POST", "/api/users/u06/digests/test", { token: h.adminToken, body: { frequency: "yearly" } }), 400, "HERALD_VALIDATION");
    expect((await call("POST", "/api/users/u06/digests/test", { token: await h.tokenFor("u06"), body: {} })).status).toBe(403);
  });
});
