/** A worker over a test database with a manual clock and a deterministic backoff (1 s, 2 s, 4 s...). */
import { Registry } from "prom-client";
import type { AnalyticsSink } from "../../src/analytics/events.js";
import type { Database } from "../../src/db/index.js";
import { type Channel, type ChannelJob, DeliveryWorker, type OutOfAppChannelName, type OutOfAppDecision, enqueueOutOfApp } from "../../src/channels/index.js";
import { type Mailer, createMailer } from "../../src/mail/index.js";
import { type ManualClock, silentLogger } from "../../src/observability/index.js";
import { type SmtpSink, smtpFor, startSmtpSink } from "../digests/support.js";

export function makeWorker(
  database: Database,
  channels: Partial<Record<OutOfAppChannelName, Channel>>,
  clock: ManualClock,
  extra: { workerId?: string; registry?: Registry; batchSize?: number; leaseMs?: number; analytics?: AnalyticsSink } = {},
) {
  const registry = extra.registry ?? new Registry();
  const worker = new DeliveryWorker({
    database,
    channels,
    clock,
    logger: silentLogger,
    metrics: registry,
    workerId: extra.workerId ?? "worker-1",
    backoff: { baseMs: 1000, maxMs: 60_000 },
    random: () => 1,
    batchSize: extra.batchSize ?? 20,
    leaseMs: extra.leaseMs ?? 60_000,
    ...(extra.analytics ? { analytics: extra.analytics } : {}),
  });
  return { worker, registry };
}

export async function enqueue(database: Database, n: { id: string; userId: string }, decision: OutOfAppDecision, now: Date) {
  return database.transaction((tx) => enqueueOutOfApp(tx, n, decision, { now }));
}

export async function queueRows(database: Database, notificationId?: string) {
  return database.query<{ id: string; channel: string; status: string; attempts: number; last_error: string | null; next_retry_at: Date; payload: Record<string, unknown> }>(
    `SELECT id, channel, status, attempts, last_error, next_retry_at, payload FROM notification_queue
      ${notificationId ? "WHERE notification_id = $1" : ""} ORDER BY created_at, id`,
    notificationId ? [notificationId] : [],
  );
}

/** Runs rounds until nothing is due at the clock's current time. */
export async function drain(worker: DeliveryWorker): Promise<number> {
  let total = 0;
  for (let n = await worker.runOnce(); n > 0; n = await worker.runOnce()) total += n;
  return total;
}

/** The database, counting the statements that record sends (queue-sql.ts markSent). */
export function countingMarks(database: Database): { database: Database; marks: () => number } {
  let marks = 0;
  const counted = Object.create(database) as Database;
  counted.query = ((text: string, params?: unknown[]) => {
    if (text.includes("SET status = 'sent', sent_at")) marks++;
    return database.query(text, params);
  }) as Database["query"];
  return { database: counted, marks: () => marks };
}

/** A channel whose sends finish when the test says, in any order; with `auto`, at once. */
export class HeldChannel implements Channel {
  readonly sends: { job: ChannelJob; succeed(): void; fail(err: Error): void }[] = [];
  private waiters: (() => void)[] = [];
  auto = false;
  constructor(readonly name: "sms" | "email" = "sms") {}

  send(job: ChannelJob): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.sends.push({ job, succeed: resolve, fail: reject });
      if (this.auto) return resolve();
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once `n` sends have started. */
  async started(n: number): Promise<void> {
    while (this.sends.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

/**
 * Two rounds of `worker` over the same due rows, the first's sends held by `channel` past the lease:
 * the second round claims them again (the same worker), and both sends are in flight.
 */
export async function claimTwice(worker: DeliveryWorker, channel: HeldChannel, clock: ManualClock, leaseMs: number) {
  const before = channel.sends.length;
  const first = worker.runOnce();
  await channel.started(before + 1);
  clock.advance(leaseMs + 1);
  const second = worker.runOnce();
  await channel.started(before + 2);
  return { first, second };
}

/** `mailer`, whose wait for a pooled connection is played by the clock (`wait()` ms): the real mailer asks the fence after it. */
export function waitingMailer(mailer: Mailer, clock: ManualClock, wait: () => number): Mailer {
  return {
    ...mailer,
    send: (message) => {
      clock.advance(wait());
      return mailer.send(message);
    },
  };
}

/** A real mailer with one connection to a real SMTP sink on loopback, for `fn`; both closed after it. */
export async function withSmtpMailer<T>(fn: (mailer: Mailer, sink: SmtpSink) => Promise<T>): Promise<T> {
  const sink = await startSmtpSink();
  const mailer = createMailer({ ...smtpFor(sink), maxConnections: 1 });
  try {
    return await fn(mailer, sink);
  } finally {
    await mailer.close();
    await sink.close();
  }
}
