/**
 * The mailer's fence (`mayStart`): asked when a pooled connection starts the
 * SMTP transaction, not when `send` is called, so a message that waited in
 * the pool past its sender's lease is never sent.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Mailer, MailFencedError, classifyMailError, createMailer } from "../../src/mail/index.js";
import { type SmtpSink, smtpFor, startSmtpSink, toRecipient } from "../digests/support.js";

describe("mailer fence", () => {
  let sink: SmtpSink | undefined;
  let mailer: Mailer | undefined;
  afterEach(async () => {
    await mailer?.close();
    await sink?.close();
  });

  const message = (to: string, mayStart?: () => boolean) => ({ to, subject: "s", html: "<p>h</p>", text: "h", ...(mayStart ? { mayStart } : {}) });

  it("a message whose fence says no is refused with MailFencedError and never reaches the server", async () => {
    sink = await startSmtpSink();
    mailer = createMailer({ ...smtpFor(sink), maxConnections: 1 });
    const refused = await mailer.send(message("no@example.test", () => false)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(MailFencedError);
    expect(classifyMailError(refused).retryable).toBe(true);
    await mailer.send(message("yes@example.test", () => true));
    expect(sink.messages.map(toRecipient)).toEqual(["yes@example.test"]);
  });

  it("the fence is asked when a connection takes the message: one queued behind another is refused if the right lapsed meanwhile", async () => {
    sink = await startSmtpSink();
    mailer = createMailer({ ...smtpFor(sink), maxConnections: 1 });
    let mayStart = true;
    const first = mailer.send(message("first@example.test"));
    const second = mailer.send(message("second@example.test", () => mayStart)).catch((e: unknown) => e);
    // Both were handed over while the right held; it lapses before the one connection is free.
    mayStart = false;
    await first;
    expect(await second).toBeInstanceOf(MailFencedError);
    await mailer.send(message("third@example.test"));
    expect(sink.messages.map(toRecipient)).toEqual(["first@example.test", "third@example.test"]);
  });

  it("the outbox mailer honours the fence too", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-fence-"));
    try {
      const outbox = createMailer({ outboxDir: dir, from: "Herald <noreply@example.test>" });
      await expect(outbox.send(message("no@example.test", () => false))).rejects.toBeInstanceOf(MailFencedError);
      await outbox.send(message("yes@example.test", () => true));
      expect(readdirSync(dir)).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
