/**
 * One small mailer for every e-mail Herald sends (digests and the e-mail
 * channel's notifications; the composition root builds one from
 * `mailerOptions(config)` and hands it to both): pooled SMTP when a server is
 * configured, otherwise `.eml` files in an outbox directory so a fresh
 * install can be tried without any mail server.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import nodemailer from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { MailFencedError } from "./errors.js";
import { SmtpPool } from "./smtp-pool.js";

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
  // Our own pool (smtp-pool.ts): one connection per message at most, the fence asked when a connection takes it.
  const pool = new SmtpPool({
    connection: {
      host: options.host,
      port: options.port,
      secure: options.secure ?? options.port === 465,
      ...(options.ignoreTLS ? { ignoreTLS: true } : {}),
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    },
    ...(options.auth ? { auth: options.auth } : {}),
    maxConnections: options.maxConnections ?? 5,
  });
  return {
    kind: "smtp",
    async send(message) {
      // MailComposer (nodemailer's documented message builder) renders the bytes nodemailer's transports would send.
      const mime = new MailComposer(toNodemailer(options.from, message)).compile();
      const messageId = mime.messageId();
      const info = await pool.send(mime.getEnvelope(), await mime.build(), message.mayStart);
      return { messageId, accepted: info.accepted.map(String) };
    },
    async close() {
      pool.close();
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

function toNodemailer(from: string, m: MailMessage): nodemailer.SendMailOptions {
  // `mayStart` stays out: it is an argument of the send, not a mail option.
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
