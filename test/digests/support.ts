/**
 * A real SMTP server on loopback (smtp-server) whose messages are parsed with
 * mailparser, with scripted refusals; plus small fixtures for digest tests.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterAll } from "vitest";
import { type Config, loadConfig } from "../../src/config/index.js";
import type { Queryable } from "../../src/db/index.js";
import type { DigestDeps } from "../../src/digests/index.js";
import { unsubscribeKey } from "../../src/mail/index.js";
import { type Clock, ManualClock, createMetricsRegistry, silentLogger } from "../../src/observability/index.js";

/** Signs the digests' unsubscribe links in these tests (the runtime derives it from its secrets). */
export const TEST_UNSUBSCRIBE_SECRET = "digest-tests-unsubscribe-secret-0123456789";

export interface Refusal {
  /** Where to refuse: on connect (greeting), on RCPT TO, or after DATA. */
  stage: "connect" | "rcpt" | "data";
  code: number;
  /** How many times (default forever). */
  times?: number;
  /** Only for this recipient (rcpt/data stages). */
  to?: string;
}

export interface SmtpSink {
  port: number;
  messages: ParsedMail[];
  /** Every refused transaction, in order ("451 data"). */
  refusals: string[];
  refuse(r: Refusal): void;
  /** Resolves once `n` messages were accepted (rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: ParsedMail[] = [];
  const refusals: string[] = [];
  const rules: (Refusal & { left: number })[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const take = (stage: Refusal["stage"], to?: string): Refusal | undefined => {
    const rule = rules.find((r) => r.stage === stage && r.left > 0 && (!r.to || !to || r.to === to));
    if (!rule) return undefined;
    rule.left--;
    refusals.push(`${rule.code} ${stage}`);
    return rule;
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    closeTimeout: 1000,
    onConnect(_session, cb) {
      const r = take("connect");
      cb(r ? smtpError(r.code, "Too busy, try later") : null);
    },
    onRcptTo(address, _session, cb) {
      const r = take("rcpt", address.address);
      cb(r ? smtpError(r.code, r.code >= 500 ? "Mailbox unavailable" : "Try later") : null);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const to = session.envelope.rcptTo[0]?.address;
        const r = take("data", to);
        if (r) return cb(smtpError(r.code, r.code >= 500 ? "Rejected" : "Temporary failure, try later"));
        simpleParser(Buffer.concat(chunks)).then(
          (mail) => {
            messages.push(mail);
            for (const w of waiters.filter((w) => messages.length >= w.n)) w.resolve();
            cb();
          },
          (err: Error) => cb(err),
        );
      });
    },
  });
  // A connection dropped by a refusal surfaces here; it is expected in these tests.
  server.on("error", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    messages,
    refusals,
    refuse(r) {
      rules.push({ ...r, left: r.times ?? Number.POSITIVE_INFINITY });
    },
    waitFor(n, ms = 10_000) {
      if (messages.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${messages.length} of ${n} messages arrived`)), ms);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export const APP_URL = "https://app.example.test";

// Data directories made for configs are removed after each file's tests (npm test left hundreds behind).
const madeDataDirs: string[] = [];
afterAll(() => {
  for (const dir of madeDataDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-digests-"));
  madeDataDirs.push(dir);
  return dir;
}

export function testConfig(dataDir = tempDataDir()): Config {
  return loadConfig({
    NODE_ENV: "test",
    APP_URL,
    DATA_DIR: dataDir,
    EMAIL_FROM: "Herald <noreply@example.test>",
    LOG_LEVEL: "silent",
  });
}

export function digestDeps(database: DigestDeps["database"], clock: Clock = new ManualClock(), config = testConfig()): DigestDeps {
  return { database, clock, logger: silentLogger, config, metrics: createMetricsRegistry(false), unsubscribeKey: unsubscribeKey(TEST_UNSUBSCRIBE_SECRET) };
}

export function smtpFor(sink: SmtpSink) {
  return { host: "127.0.0.1", port: sink.port, secure: false, from: "Herald <noreply@example.test>" };
}

export async function addUser(
  db: Queryable,
  id: string,
  opts: { timezone?: string; email?: string | null; frequency?: string; enabled?: boolean } = {},
): Promise<void> {
  await db.query("INSERT INTO users (id, email, timezone) VALUES ($1, $2, $3)", [
    id,
    opts.email === undefined ? `${id}@example.test` : opts.email,
    opts.timezone ?? "UTC",
  ]);
  if (opts.frequency !== undefined || opts.enabled !== undefined) {
    await db.query(
      "INSERT INTO notification_preferences (user_id, email_digest_frequency, email_digest_enabled) VALUES ($1, $2, $3)",
      [id, opts.frequency ?? "daily", opts.enabled ?? true],
    );
  }
}

export async function addNotification(
  db: Queryable,
  userId: string,
  createdAt: Date | string,
  fields: { type?: string; title?: string; message?: string; actionUrl?: string | null; read?: boolean; archived?: boolean } = {},
): Promise<string> {
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO notifications (user_id, type, priority, title, message, action_url, read, archived, created_at)
     VALUES ($1, $2, 'normal', $3, $4, $5, $6, $7, $8) RETURNING id`,
    [
      userId,
      fields.type ?? "new_message",
      fields.title ?? "Hello",
      fields.message ?? "You have a message",
      fields.actionUrl ?? null,
      fields.read ?? false,
      fields.archived ?? false,
      new Date(createdAt).toISOString(),
    ],
  );
  return row!.id;
}

export interface DigestRecord {
  id: string;
  user_id: string;
  frequency: string;
  status: string;
  scheduled_for: Date;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
  notification_count: number;
  message_id: string | null;
  is_test: boolean;
}

export async function digestRows(db: Queryable, userId?: string): Promise<DigestRecord[]> {
  return db.query<DigestRecord>(
    `SELECT id, user_id, frequency, status, scheduled_for, attempts, last_error, next_attempt_at, notification_count, message_id, is_test
       FROM email_digests ${userId ? "WHERE user_id = $1" : ""} ORDER BY scheduled_for, user_id`,
    userId ? [userId] : [],
  );
}

export const toRecipient = (m: ParsedMail): string => {
  const to = Array.isArray(m.to) ? m.to[0] : m.to;
  return to?.value[0]?.address ?? "";
};

/** Empties the tables digests read and write, so tests in one file share a database. */
export async function resetDigestTables(db: Queryable): Promise<void> {
  await db.query("DELETE FROM email_digests");
  await db.query("DELETE FROM notifications");
  await db.query("DELETE FROM notification_preferences");
  await db.query("DELETE FROM users");
}
