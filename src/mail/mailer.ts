/**
 * One small mailer for every e-mail Herald sends (digests now, single
 * notification e-mails from the channels later): pooled SMTP when a server is
 * configured, otherwise `.eml` files in an outbox directory so a fresh
 * install can be tried without any mail server.
 */
import { mkdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import nodemailer from "nodemailer";

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
  const transport = nodemailer.createTransport({
    pool: true,
    host: options.host,
    port: options.port,
    secure: options.secure ?? options.port === 465,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.ignoreTLS ? { ignoreTLS: true } : {}),
    maxConnections: options.maxConnections ?? 5,
    maxMessages: Infinity,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  });
  return {
    kind: "smtp",
    async send(message) {
      const info = await transport.sendMail(toNodemailer(options.from, message));
      return { messageId: info.messageId, accepted: info.accepted.map(String) };
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
      const info = await transport.sendMail(toNodemailer(options.from, message));
      if (!madeDir) {
        mkdirSync(options.outboxDir, { recursive: true });
        madeDir = true;
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const safeId = info.messageId.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80);
      const file = path.join(options.outboxDir, `${stamp}-${(sequence++).toString(36)}-${safeId}.eml`);
      await writeFile(file, info.message as Buffer);
      return { messageId: info.messageId, accepted: [message.to] };
    },
    async close() {},
  };
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
