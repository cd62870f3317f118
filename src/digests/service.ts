/**
 * EmailDigestService, the guide's second system: the scheduler, test digests,
 * stats and history. The moving parts live beside it: schedule.ts (window
 * math), claim.ts (SQL), render.ts (the e-mail), delivery.ts (send and
 * record), scheduler.ts (the loop).
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import type { AnalyticsSink } from "../analytics/index.js";
import { HeraldError, notFound, validationError } from "../errors/index.js";
import { lockDirectoryForRead } from "../users/index.js";
import { type Mailer, type SmtpMailerOptions, createMailer, unsubscribeUrl, verifyUnsubscribeToken } from "../mail/index.js";
import type { Config } from "../config/index.js";
import type { Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { Registry } from "prom-client";
import { type DigestRow, claimDueDigests, digestAudience, leaseDueDigests } from "./claim.js";
import { type DeliveryContext, type DigestMetrics, deliverDigests, digestMetrics } from "./delivery.js";
import { type DigestCounts, type EmailDigest, digestCounts, digestRecipient, listDigestRows, toEmailDigest } from "./history.js";
import { DigestScheduler } from "./scheduler.js";
import { type DigestFrequency, dueWindow, isDigestFrequency, nextWindowEnd, resolveTimeZone } from "./schedule.js";
import { DEFAULT_TUNING, type DigestTuning, digestTuning } from "./tuning.js";

/** The guide's `smtpConfig`: the shared mailer's SMTP options. */
export type SmtpConfig = SmtpMailerOptions;

export interface DigestDeps {
  database: Database;
  clock: Clock;
  logger: Logger;
  config: Config;
  metrics: Registry;
  /** Signs the one-click unsubscribe links; the same key as notification e-mails' (the runtime's). */
  unsubscribeKey: Buffer;
  /** The process's one mailer (createHerald shares it with notification e-mails; its owner closes it). Without it, one is built from `smtp` on first send and closed by stop(). */
  mailer?: Mailer;
  /** Where sent and failed digests are counted (the runtime's analytics ingest). */
  analytics?: AnalyticsSink;
}

/** How long a send may take before another instance may take the digest over (default; see DigestTuning.leaseMs). */
export const LEASE_MS = DEFAULT_TUNING.leaseMs;
const BATCH_SIZE = 200;
const DELIVERY_LOOPS = 2;
const NOMINAL_PERIOD_MS: Record<DigestFrequency, number> = { hourly: 3_600_000, daily: 86_400_000, weekly: 7 * 86_400_000 };

export interface DigestRunSummary {
  claimed: number;
  sent: number;
  skipped: number;
  retrying: number;
  failed: number;
}

export interface DigestStats extends DigestCounts {
  enabled: boolean;
  frequency: DigestFrequency;
  timezone: string;
  /** When the next scheduled digest window closes (null when digests are off or no address). */
  nextScheduledAt: string | null;
}

export class EmailDigestService {
  readonly tuning: DigestTuning;
  private readonly owner: string;
  private mailer: Mailer | undefined;
  private metrics: DigestMetrics | undefined;
  private scheduler: DigestScheduler | undefined;

  /** `tuning` overrides the defaults (createHerald passes the HERALD_DIGEST_* configuration). */
  constructor(
    readonly smtp: SmtpConfig | undefined,
    readonly deps: DigestDeps,
    tuning: Partial<DigestTuning> = {},
  ) {
    this.tuning = digestTuning(tuning);
    // The pid says which process holds a lease (leased_by) when looking at the table.
    this.owner = `digests-${process.pid}-${randomUUID().slice(0, 8)}`;
  }

  /** Starts the scheduler loop (idempotent): a run at once, then at every minute boundary. */
  async initializeScheduledJobs(): Promise<void> {
    if (this.scheduler) return;
    const deps = this.deps;
    this.scheduler = new DigestScheduler({ run: () => this.runDue(), clock: deps.clock, logger: deps.logger, maxIntervalMs: this.tuning.pollMs });
    this.scheduler.start();
  }

  /** Stops the loop (awaiting the run in flight) and closes the mail transport it built (not a given one). */
  async stop(): Promise<void> {
    await this.scheduler?.stop();
    await this.mailer?.close();
    this.mailer = undefined;
  }

  /** One scheduler pass at the clock's time. */
  tick(): Promise<DigestRunSummary> {
    return this.runDue();
  }

  /**
   * Claims the latest closed window of every digest user (a missed window is
   * claimed once: only the latest one exists to claim), then sends every due
   * digest: fresh claims, retries whose backoff elapsed, and digests whose
   * holder's lease expired. With `now`, the whole pass runs at that instant.
   */
  async runDue(now?: Date): Promise<DigestRunSummary> {
    const deps = this.deps;
    const clock: Clock = now ? { now: () => now } : deps.clock;
    const at = clock.now();
    const db = deps.database;
    const groups = (await digestAudience(db)).flatMap(({ timezone, frequency }) => {
      if (!isDigestFrequency(frequency)) return [];
      const w = dueWindow(frequency, resolveTimeZone(timezone), at);
      return [{ timezone, frequency, windowStart: w.start, scheduledFor: w.end }];
    });
    const summary: DigestRunSummary = { claimed: await claimDueDigests(db, groups, at), sent: 0, skipped: 0, retrying: 0, failed: 0 };
    const ctx = this.deliveryContext(deps, clock, this.deps.unsubscribeKey);
    const loop = async () => {
      for (;;) {
        const t = clock.now();
        const rows = await leaseDueDigests(db, { now: t, leaseUntil: new Date(t.getTime() + this.tuning.leaseMs), owner: this.owner, limit: BATCH_SIZE });
        if (rows.length === 0) break;
        const o = await deliverDigests(ctx, rows);
        summary.sent += o.sent;
        summary.skipped += o.skipped;
        summary.retrying += o.retrying;
        summary.failed += o.failed;
        if (rows.length < BATCH_SIZE) break;
      }
    };
    // Two loops, so one batch's database work overlaps the other's sending
    // and the SMTP pool never drains between batches.
    await Promise.all(Array.from({ length: DELIVERY_LOOPS }, loop));
    if (summary.claimed + summary.sent + summary.failed > 0) deps.logger.info({ ...summary }, "digest run");
    return summary;
  }

  /** Sends a digest of the last period now, outside the schedule (an `is_test` row, not a claim). */
  async sendTestDigest(userId: string, frequency: DigestFrequency = "daily"): Promise<EmailDigest> {
    if (!isDigestFrequency(frequency)) throw validationError("Invalid frequency", [{ field: "frequency", message: "must be hourly, daily or weekly" }]);
    const deps = this.deps;
    // The address is read from the directory and copied: no erasure runs between the two (src/users/directory-lock.ts).
    const row = await deps.database.transaction(async (tx) => {
      await lockDirectoryForRead(tx);
      const user = await digestRecipient(tx, userId);
      if (!user) throw notFound("User");
      if (!user.email) throw new HeraldError("HERALD_CONFLICT", "This user has no e-mail address");
      const now = deps.clock.now();
      const [inserted] = await tx.query<DigestRow>(
        `INSERT INTO email_digests (user_id, frequency, status, scheduled_for, window_start, email_address, is_test,
                                    attempts, lease_until, leased_by, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, 'pending', $3, $4, $5, true, 1, $6, $7, $3, $3, $3)
         RETURNING *`,
        [userId, frequency, now.toISOString(), new Date(now.getTime() - NOMINAL_PERIOD_MS[frequency]).toISOString(), user.email, new Date(now.getTime() + this.tuning.leaseMs).toISOString(), this.owner],
      );
      return inserted;
    });
    await deliverDigests(this.deliveryContext(deps, deps.clock, this.deps.unsubscribeKey), [row!]);
    const [after] = await deps.database.query<DigestRow>("SELECT * FROM email_digests WHERE id = $1", [row!.id]);
    return toEmailDigest(after!);
  }

  /** Totals (the guide's `totalSent`, `totalFailed`, plus skipped, pending, last times) and the schedule. */
  async getDigestStats(userId: string): Promise<DigestStats> {
    const deps = this.deps;
    const [counts, user] = await Promise.all([digestCounts(deps.database, userId), digestRecipient(deps.database, userId)]);
    const frequency = user && isDigestFrequency(user.frequency) ? user.frequency : "daily";
    const timezone = resolveTimeZone(user?.timezone);
    const enabled = user?.enabled ?? true;
    const next = user?.email && enabled ? nextWindowEnd(frequency, timezone, deps.clock.now()).toISOString() : null;
    return { ...counts, enabled, frequency, timezone, nextScheduledAt: next };
  }

  /** The user a one-click unsubscribe token was signed for, or undefined when it is not genuine. */
  async verifyUnsubscribe(token: unknown): Promise<string | undefined> {
    return verifyUnsubscribeToken(this.deps.unsubscribeKey, token);
  }

  /** The signed unsubscribe link for `userId` (List-Unsubscribe and e-mail footers). */
  async unsubscribeUrl(userId: string): Promise<string> {
    const deps = this.deps;
    return unsubscribeUrl(deps.config.appUrl, this.deps.unsubscribeKey, userId);
  }

  /** The user's digest history, newest first. */
  async listDigests(userId: string, page: { limit?: number; offset?: number } = {}): Promise<{ digests: EmailDigest[]; total: number }> {
    const deps = this.deps;
    const limit = Math.min(Math.max(page.limit ?? 20, 1), 100);
    const offset = Math.max(page.offset ?? 0, 0);
    const { rows, total } = await listDigestRows(deps.database, userId, { limit, offset });
    return { digests: rows.map(toEmailDigest), total };
  }

  /** True when the user is in the directory (admin views answer 404 otherwise). */
  async hasUser(userId: string): Promise<boolean> {
    const deps = this.deps;
    return (await digestRecipient(deps.database, userId)) !== undefined;
  }

  private deliveryContext(deps: DigestDeps, clock: Clock, key: Buffer): DeliveryContext {
    this.metrics ??= digestMetrics(deps.metrics);
    const from = this.smtp?.from || deps.config.email.from;
    return {
      db: deps.database,
      mailer: () => deps.mailer ?? this.ownMailer(deps, from),
      clock,
      logger: deps.logger,
      metrics: this.metrics,
      appUrl: deps.config.appUrl,
      unsubscribeUrl: (userId) => unsubscribeUrl(deps.config.appUrl, key, userId),
      from,
      owner: this.owner,
      tuning: this.tuning,
      ...(deps.analytics ? { analytics: deps.analytics } : {}),
      timeZones: async (ids) => {
        const rows = await deps.database.query<{ id: string; timezone: string }>("SELECT id, timezone FROM users WHERE id = ANY($1::text[])", [ids]);
        return new Map(rows.map((r) => [r.id, r.timezone]));
      },
    };
  }

  /** The mailer this service built (on first send, from `smtp`, or the outbox without it); stop() closes it. */
  private ownMailer(deps: DigestDeps, from: string): Mailer {
    if (!this.mailer) this.mailer = this.createMailer(deps, from);
    return this.mailer;
  }

  private createMailer(deps: DigestDeps, from: string): Mailer {
    if (!this.smtp) return createMailer({ outboxDir: path.join(deps.config.dataDir, "outbox"), from });
    const timeoutMs = this.smtp.timeoutMs ?? this.tuning.smtpTimeoutMs;
    return createMailer({ ...this.smtp, from, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  }
}
