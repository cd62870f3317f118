/**
 * One-click unsubscribe from notification e-mails (issue #15): an immediate
 * e-mail sent by Herald's delivery worker over real SMTP carries the signed
 * List-Unsubscribe link (RFC 8058) and the same link in its footer; the mail
 * client's POST turns e-mail off without signing in; the next immediate
 * e-mail for that user is not sent.
 */
import type { ParsedMail } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unsubscribeKey, verifyUnsubscribeToken } from "../../src/mail/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { drain, queueRows } from "./harness.js";
import { type SmtpReceiver, startSmtpReceiver } from "./support.js";

const APP_URL = "https://app.example.test";
const UNSUBSCRIBE_SECRET = "unsubscribe-secret-shared-by-every-instance-0123";
const rawHeader = (mail: ParsedMail, key: string) => mail.headerLines.find((h) => h.key === key)?.line ?? "";

describe(`one-click unsubscribe from notification e-mails (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  let smtp: SmtpReceiver;
  let h: TestHerald;

  beforeAll(async () => {
    smtp = await startSmtpReceiver();
    h = await startTestHerald({ env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(smtp.port), APP_URL, HERALD_UNSUBSCRIBE_SECRET: UNSUBSCRIBE_SECRET } });
  });
  afterAll(async () => {
    await h?.stop();
    await smtp?.close();
  });

  const local = (link: string) => {
    const u = new URL(link);
    return `${h.baseUrl}${u.pathname}${u.search}`;
  };

  it("the worker's e-mail carries the signed link in both headers and its footer; POSTing it stops the next e-mail", async () => {
    await h.herald.users.upsert({ id: "mail-leaver", email: "leaver@example.test" });
    const first = await h.herald.notifications.createAndSendNotification({ userId: "mail-leaver", type: "new_message", title: "Before leaving", message: "Hello" });
    expect(await drain(h.herald.delivery.worker)).toBe(1);
    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0]!;
    expect(mail.headers.get("x-herald-notification")).toBe(first!.id);

    expect(rawHeader(mail, "list-unsubscribe-post")).toBe("List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    const link = /<(https:\/\/app\.example\.test\/api\/unsubscribe\?token=[^>]+)>/.exec(rawHeader(mail, "list-unsubscribe"))?.[1];
    expect(link).toBeDefined();
    // Signed for this user with the configured secret, so every instance sharing it accepts it.
    expect(verifyUnsubscribeToken(unsubscribeKey(UNSUBSCRIBE_SECRET), new URL(link!).searchParams.get("token"))).toBe("mail-leaver");
    // The footer carries the same link, in both parts.
    expect(mail.text).toContain(link!);
    expect(mail.html).toContain(`href="${link!}"`);

    // The mail client's one-click POST (RFC 8058), no credentials.
    const post = await fetch(local(link!), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=One-Click" });
    expect(post.status).toBe(200);
    expect(await h.herald.notifications.preferences.get("mail-leaver")).toMatchObject({ emailEnabled: false, emailDigestEnabled: false });

    // The next immediate notification: stored in app, no e-mail queued or sent.
    const next = await h.herald.notifications.createAndSendNotification({ userId: "mail-leaver", type: "new_message", title: "After leaving", message: "Hello again" });
    expect(next).not.toBeNull();
    expect(await drain(h.herald.delivery.worker)).toBe(0);
    expect((await queueRows(h.database, next!.id)).filter((r) => r.channel === "email")).toEqual([]);
    expect(smtp.mails).toHaveLength(1);
  });
});
