/**
 * One-click unsubscribe end to end (issue #15): a real digest over SMTP, its
 * List-Unsubscribe link followed as a mail client would (RFC 8058 POST), the
 * preference off, and the next digest not sent. GET only shows a page.
 */
import type { ParsedMail } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dueWindow, nextWindowEnd } from "../../src/digests/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { type SmtpSink, addNotification, addUser, startSmtpSink } from "./support.js";

const rawHeader = (mail: ParsedMail, key: string) => mail.headerLines.find((h) => h.key === key)?.line ?? "";

describe("one-click unsubscribe", () => {
  let sink: SmtpSink;
  let h: TestHerald;

  beforeAll(async () => {
    sink = await startSmtpSink();
    h = await startTestHerald({ env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(sink.port), APP_URL: "https://app.example.test" } });
  });
  afterAll(async () => {
    await h?.stop();
    await sink?.close();
  });

  /** The link as sent, pointed at the test server. */
  const local = (link: string) => {
    const u = new URL(link);
    return `${h.baseUrl}${u.pathname}${u.search}`;
  };
  const prefs = async (userId: string) => (await h.herald.notifications.preferences.get(userId)) as { emailDigestEnabled: boolean; emailEnabled: boolean };

  it("a digest's List-Unsubscribe link: GET changes nothing, the one-click POST turns e-mail off, the next digest is not sent", async () => {
    const now = new Date();
    const window = dueWindow("daily", "UTC", now);
    await addUser(h.database, "leaver");
    await addNotification(h.database, "leaver", new Date(window.end.getTime() - 3_600_000), { title: "Before leaving" });
    expect(await h.herald.digests.runDue(now)).toMatchObject({ claimed: 1, sent: 1 });
    const mail = sink.messages.at(-1)!;

    const header = rawHeader(mail, "list-unsubscribe");
    expect(rawHeader(mail, "list-unsubscribe-post")).toBe("List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    const link = /<(https:\/\/app\.example\.test\/api\/unsubscribe\?token=[^>]+)>/.exec(header)?.[1];
    expect(link).toBeDefined();
    // The footer carries the same link.
    expect(mail.text).toContain(link!);

    // A scanner's prefetch: a page with a button, nothing changed.
    const page = await fetch(local(link!));
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toMatch(/<form method="post"/);
    expect(await prefs("leaver")).toMatchObject({ emailDigestEnabled: true, emailEnabled: true });

    // The mail client's one-click POST (RFC 8058), no credentials.
    const post = await fetch(local(link!), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=One-Click" });
    expect(post.status).toBe(200);
    expect(await prefs("leaver")).toMatchObject({ emailDigestEnabled: false, emailEnabled: false });

    // The next window: new notifications, no digest.
    const next = nextWindowEnd("daily", "UTC", now);
    await addNotification(h.database, "leaver", new Date(next.getTime() - 3_600_000), { title: "After leaving" });
    const sent = sink.messages.length;
    expect(await h.herald.digests.runDue(new Date(next.getTime() + 60_000))).toMatchObject({ claimed: 0, sent: 0 });
    expect(sink.messages).toHaveLength(sent);
  });

  it("the one-click POST in multipart/form-data (what RFC 8058 3.2 says a mail receiver SHOULD send) unsubscribes too", async () => {
    await addUser(h.database, "multipart-leaver");
    const link = local(await h.herald.digests.unsubscribeUrl("multipart-leaver"));
    const form = new FormData();
    form.append("List-Unsubscribe", "One-Click");
    const res = await fetch(link, { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect(await prefs("multipart-leaver")).toMatchObject({ emailDigestEnabled: false, emailEnabled: false });
    // A large multipart body is still refused before it is read whole.
    await addUser(h.database, "multipart-stays");
    const big = new FormData();
    big.append("List-Unsubscribe", "x".repeat(64 * 1024));
    const tooBig = await fetch(local(await h.herald.digests.unsubscribeUrl("multipart-stays")), { method: "POST", body: big });
    expect(tooBig.status).toBe(413);
    expect(await prefs("multipart-stays")).toMatchObject({ emailDigestEnabled: true, emailEnabled: true });
  });

  it("a tampered, foreign or malformed token is refused with 400 and changes nothing", async () => {
    await addUser(h.database, "victim");
    const good = new URL(await h.herald.digests.unsubscribeUrl("attacker"));
    const token = good.searchParams.get("token")!;
    const [, mac] = token.split(".");
    const forged = `${Buffer.from("victim").toString("base64url")}.${mac}`;
    const flipped = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
    for (const bad of [forged, flipped, "nonsense", ""]) {
      for (const method of ["GET", "POST"]) {
        const res = await fetch(`${h.baseUrl}/api/unsubscribe?token=${encodeURIComponent(bad)}`, { method });
        expect(res.status, `${method} ${bad}`).toBe(400);
        expect(res.headers.get("content-type")).toMatch(/application\/problem\+json/);
      }
    }
    expect(await prefs("victim")).toMatchObject({ emailDigestEnabled: true, emailEnabled: true });
  });
});
