/**
 * The mailer's fence (`mayStart`): asked when a pooled connection starts the
 * SMTP transaction, not when `send` is called, so a message that waited in
 * the pool past its sender's lease is never sent.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { type AddressInfo, Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Mailer, MailFencedError, MailUnreachedError, type SmtpMailerOptions, classifyMailError, createMailer } from "../../src/mail/index.js";
import { type SmtpSink, smtpFor, startSmtpSink, toRecipient } from "../digests/support.js";
import { type ScriptedSmtp, refusingPort, startScriptedSmtp, wait } from "./smtp.js";

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

/**
 * The pool's promises (src/mail/smtp-pool.ts), which the digests' lease and
 * the retry accounting rely on: a message is carried by one connection at
 * most, a connection that never took it makes no delivery attempt, and
 * connections are reused and capped.
 */
describe("mailer pool", () => {
  let smtp: ScriptedSmtp | undefined;
  let mailer: Mailer | undefined;
  afterEach(async () => {
    await mailer?.close();
    await smtp?.close();
    smtp = mailer = undefined;
  });

  const message = (to: string) => ({ to, subject: "s", html: "<p>h</p>", text: "h" });
  const smtpAt = (port: number, extra: Partial<SmtpMailerOptions> = {}): SmtpMailerOptions => ({
    host: "127.0.0.1",
    port,
    secure: false,
    from: "Herald <noreply@example.test>",
    ...extra,
  });

  it.each(["drop", "stall"] as const)(
    "a connection lost after the body (%s) fails that message, which is never sent again on any connection (RFC 1047)",
    async (answer) => {
      smtp = await startScriptedSmtp({ answer: (to, nth) => (to === "lost@example.test" && nth === 0 ? answer : "accept") });
      mailer = createMailer(smtpAt(smtp.port, { maxConnections: 2, timeoutMs: 500 }));
      const lost = mailer.send(message("lost@example.test")).catch((e: unknown) => e);
      const other = mailer.send(message("other@example.test"));
      const err = await lost;
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(MailUnreachedError);
      // The server may hold it: an attempt, retryable by the caller, who alone decides.
      expect(classifyMailError(err)).toMatchObject({ retryable: true, reachedServer: true });
      await other;
      // Longer than any requeue delay: nothing sends it again behind the caller's back.
      await wait(500);
      expect(smtp.bodies.filter((to) => to === "lost@example.test")).toHaveLength(1);
      // The pool goes on with a fresh connection.
      await mailer.send(message("after@example.test"));
      expect(smtp.bodies.filter((to) => to === "lost@example.test")).toHaveLength(1);
      expect(smtp.bodies).toContain("after@example.test");
    },
  );

  it("a refused connection is no delivery attempt: MailUnreachedError, retryable", async () => {
    mailer = createMailer(smtpAt(await refusingPort()));
    const err = await mailer.send(message("a@example.test")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailUnreachedError);
    expect(classifyMailError(err)).toMatchObject({ retryable: true, reachedServer: false });
  });

  it("a server that hangs up before its greeting: one connection, then MailUnreachedError (no reconnect loop)", async () => {
    // nodemailer's own pool re-queues a message whose connection closed without an error, by default forever.
    let connections = 0;
    const hangUp = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => hangUp.listen(0, "127.0.0.1", resolve));
    try {
      mailer = createMailer(smtpAt((hangUp.address() as AddressInfo).port));
      const err = await mailer.send(message("a@example.test")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailUnreachedError);
      expect(classifyMailError(err)).toMatchObject({ retryable: true, reachedServer: false });
      await wait(300);
      expect(connections).toBe(1);
    } finally {
      await new Promise<void>((resolve) => hangUp.close(() => resolve()));
    }
  });

  it("a connection that fails to open fails the one message it was opened for; the next gets a new connection", async () => {
    smtp = await startScriptedSmtp({ greeting: (nth) => (nth === 1 ? 421 : undefined) });
    mailer = createMailer(smtpAt(smtp.port, { maxConnections: 1 }));
    const [first, second] = await Promise.allSettled([mailer.send(message("first@example.test")), mailer.send(message("second@example.test"))]);
    expect(first.status === "rejected" && first.reason).toBeInstanceOf(MailUnreachedError);
    expect(classifyMailError((first as PromiseRejectedResult).reason)).toMatchObject({ responseCode: 421, retryable: true, reachedServer: false });
    expect(second.status).toBe("fulfilled");
    expect(smtp.bodies).toEqual(["second@example.test"]);
  });

  it("turns Nagle's algorithm off on every connection it opens (a message's terminator is not held for the server's delayed ACK)", async () => {
    const setNoDelay = vi.spyOn(Socket.prototype, "setNoDelay");
    try {
      smtp = await startScriptedSmtp({ answerDelayMs: 20 });
      const port = smtp.port;
      mailer = createMailer(smtpAt(port, { maxConnections: 2 }));
      await Promise.all(["a", "b", "c"].map((to) => mailer!.send(message(`${to}@example.test`))));
      // Our side of each connection is the socket whose remote port is the server's.
      const noDelay = new Set(setNoDelay.mock.contexts.filter((socket, i) => (socket as Socket).remotePort === port && setNoDelay.mock.calls[i]![0] !== false));
      expect(smtp.connections).toBe(2);
      expect(noDelay.size).toBe(2);
    } finally {
      setNoDelay.mockRestore();
    }
  });

  it("connections are reused and never more than maxConnections are open", async () => {
    smtp = await startScriptedSmtp({ answerDelayMs: 30 });
    mailer = createMailer(smtpAt(smtp.port, { maxConnections: 2 }));
    const recipients = Array.from({ length: 8 }, (_, i) => `r${i}@example.test`);
    const results = await Promise.all(recipients.map((to) => mailer!.send(message(to))));
    expect(results.map((r) => r.accepted)).toEqual(recipients.map((to) => [to]));
    expect(smtp.mostOpen).toBeLessThanOrEqual(2);
    const opened = smtp.connections;
    expect(opened).toBeLessThanOrEqual(2);
    await mailer.send(message("later@example.test"));
    expect(smtp.connections).toBe(opened);
  });

  it("a connection the server closed while idle leaves the pool; the next message opens another", async () => {
    smtp = await startScriptedSmtp({ idleTimeoutMs: 150 });
    mailer = createMailer(smtpAt(smtp.port, { maxConnections: 1 }));
    await mailer.send(message("before@example.test"));
    await wait(400);
    await mailer.send(message("after@example.test"));
    expect(smtp.bodies).toEqual(["before@example.test", "after@example.test"]);
    expect(smtp.connections).toBe(2);
  });

  it("logs in on every connection when credentials are set; refused credentials are a permanent verdict, no attempt", async () => {
    smtp = await startScriptedSmtp({ auth: { user: "herald", pass: "right" } });
    mailer = createMailer(smtpAt(smtp.port, { auth: { user: "herald", pass: "right" } }));
    await mailer.send(message("in@example.test"));
    await mailer.close();
    mailer = createMailer(smtpAt(smtp.port, { auth: { user: "herald", pass: "wrong" } }));
    const err = await mailer.send(message("out@example.test")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailUnreachedError);
    expect(classifyMailError(err)).toMatchObject({ responseCode: 535, retryable: false });
    expect(smtp.bodies).toEqual(["in@example.test"]);
  });

  it("close refuses what still waits as unreached", async () => {
    smtp = await startScriptedSmtp({ answerDelayMs: 200 });
    mailer = createMailer(smtpAt(smtp.port, { maxConnections: 1 }));
    const inFlight = mailer.send(message("first@example.test"));
    const queued = mailer.send(message("queued@example.test")).catch((e: unknown) => e);
    // The first body is in, its answer pending; the second waits for the one connection.
    while (smtp.bodies.length === 0) await wait(10);
    await mailer.close();
    expect(await queued).toBeInstanceOf(MailUnreachedError);
    await expect(mailer.send(message("late@example.test"))).rejects.toBeInstanceOf(MailUnreachedError);
    await inFlight;
    expect(smtp.bodies).toEqual(["first@example.test"]);
  });
});
