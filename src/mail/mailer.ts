/**
 * One small mailer for every e-mail Herald sends (digests now, single
 * notification e-mails from the channels later): pooled SMTP when a server is
 * configured, otherwise `.eml` files in an outbox directory so a fresh
 * install can be tried without any mail server.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import nodemailer from "nodemailer";
import type SMTPPool from "nodemailer/lib/smtp-pool/index.js";
import { MailFencedError, MailUnreachedError } from "./errors.js";

export interface SmtpMailerOptions {
  host: string;
  port: number;
  secure?: boolean;
  auth?: { user: string; pass: string };
  from: string;
  /** Pooled connections kept open (default 5). */
  maxConnections?: number;
  /** Skip STARTTLS even when offered (loopback test servers). */
  ignoreTLS?: boolean;
  /** Milliseconds for connect, greeting and socket inactivity (default 30 s, well under a digest lease). */
  timeoutMs?: number;
}

export interface OutboxMailerOptions {
  outboxDir: string;
  from: string;
}

export interface MailMessage {
  to: string;
  subject: string;
  html: string;
  text: string;
  headers?: Record<string, string>;
  /** Set by the caller so a resend of the same message is recognisable ("<id@host>"). */
  messageId?: string;
  /**
   * Asked when the SMTP transaction is about to start (a pooled connection
   * took the message, possibly long after `send` was called); false aborts
   * it before any byte of the message is sent, and `send` rejects with
   * MailFencedError. A caller whose right to send may lapse (a lease) uses it
   * as a fence.
   */
  mayStart?: () => boolean;
}

export interface MailResult {
  messageId: string;
  accepted: string[];
}

export interface Mailer {
  /** "smtp" or "outbox", for logs and tests. */
  readonly kind: "smtp" | "outbox";
  send(message: MailMessage): Promise<MailResult>;
  close(): Promise<void>;
}

export function createMailer(options: SmtpMailerOptions | OutboxMailerOptions): Mailer {
  return "outboxDir" in options ? outboxMailer(options) : smtpMailer(options);
}

function smtpMailer(options: SmtpMailerOptions): Mailer {
  const timeout = options.timeoutMs ?? 30_000;
  // maxRequeues is read by nodemailer's pool but missing from its types.
  const poolOptions: SMTPPool.Options & { maxRequeues: number } = {
    pool: true,
    host: options.host,
    port: options.port,
    secure: options.secure ?? options.port === 465,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.ignoreTLS ? { ignoreTLS: true } : {}),
    maxConnections: options.maxConnections ?? 5,
    maxMessages: Infinity,
    // A connection that closes under a message fails that message instead of
    // nodemailer sending it again on another connection: the server may have
    // taken it already (RFC 1047), and the caller owns the retry decision.
    maxRequeues: 0,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  };
  const transport = nodemailer.createTransport(poolOptions);
  // The fence runs when the pool hands the message to a connection: nodemailer
  // instantiates a message's transforms as that connection starts sending it.
  transport.use("stream", (mail, done) => {
    const data = mail.data as { heraldMayStart?: () => boolean; heraldTaken?: { taken: boolean } };
    // A factory, not a stream: nodemailer calls it per read of the message (typed as a stream only).
    mail.message.transform((() => new Fence(data.heraldMayStart ?? (() => true), data.heraldTaken)) as unknown as Transform);
    done();
  });
  return {
    kind: "smtp",
    async send(message) {
      const taken = { taken: false };
      try {
        const info = await transport.sendMail({ ...toNodemailer(options.from, message), heraldMayStart: message.mayStart, heraldTaken: taken } as nodemailer.SendMailOptions);
        return { messageId: info.messageId, accepted: info.accepted.map(String) };
      } catch (err) {
        // No connection ever took the message (refused, or no greeting in time): the server never saw it.
        throw taken.taken || err instanceof MailFencedError ? err : new MailUnreachedError(err);
      }
    },
    async close() {
      transport.close();
    },
  };
}

function outboxMailer(options: OutboxMailerOptions): Mailer {
  // streamTransport + buffer renders the exact RFC 5322 bytes an SMTP server would receive.
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  let madeDir = false;
  let sequence = 0;
  return {
    kind: "outbox",
    async send(message) {
      if (message.mayStart && !message.mayStart()) throw new MailFencedError();
      const info = await transport.sendMail(toNodemailer(options.from, message));
      if (!madeDir) {
        // Owner-only, whatever the umask: the messages hold addresses and content.
        mkdirSync(options.outboxDir, { recursive: true, mode: 0o700 });
        madeDir = true;
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const safeId = info.messageId.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80);
      const file = path.join(options.outboxDir, `${stamp}-${(sequence++).toString(36)}-${safeId}.eml`);
      await writeFile(file, info.message as Buffer, { mode: 0o600 });
      return { messageId: info.messageId, accepted: [message.to] };
    },
    async close() {},
  };
}

/** Passes the message through, unless `mayStart` says no when its first bytes come (the SMTP transaction is then dropped). */
class Fence extends Transform {
  private checked = false;
  constructor(
    private readonly mayStart: () => boolean,
    private readonly taken?: { taken: boolean },
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.checked) {
      this.checked = true;
      if (!this.mayStart()) return callback(new MailFencedError());
      if (this.taken) this.taken.taken = true;
    }
    callback(null, chunk);
  }
}

function toNodemailer(from: string, m: MailMessage): nodemailer.SendMailOptions {
  return {
    from,
    to: m.to,
    subject: m.subject,
    html: m.html,
    text: m.text,
    ...(m.headers ? { headers: m.headers } : {}),
    ...(m.messageId ? { messageId: m.messageId } : {}),
  };
}
