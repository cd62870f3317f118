/**
 * The delivery worker: a fetch loop over notification_queue (pg-boss's
 * worker.ts). It claims due rows with SKIP LOCKED under a lease, hands each
 * to its channel, and records the outcome: sent, retry later with backoff, or
 * failed after the attempt limit (or at once for a permanent error).
 * Delivery is at least once; a send is repeated only when a worker dies (or
 * its lease runs out) between the provider accepting it and the row update,
 * or when that update cannot be written (the database unreachable, or a lock
 * race lost three times): the rows of that batch of sent marks, up to
 * `concurrency`, go again once their lease ends.
 * A claim (locked_by, locked_until) alone writes its row's retry or give-up;
 * a late success is recorded as queue-sql.ts markSent says; a send not
 * started by its lease's last part is fenced (ChannelJob.mayStart) and handed on.
 */
import type { AnalyticsSink } from "../analytics/index.js";
import { type Database, GroupCommit } from "../db/index.js";
import { isLockConflict } from "../errors/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { Registry } from "prom-client";
import { type Channel, type ChannelJob, FENCED, type OutOfAppChannelName, asChannelError, fenced, permanent } from "./channel.js";
import { type BackoffPolicy, DEFAULT_BACKOFF, backoffDelay } from "./backoff.js";
import { type ChannelMetrics, channelMetrics } from "./metrics.js";
import * as plans from "./queue-sql.js";
import type { ClaimedRow, NotificationContent, Recipient } from "./queue-sql.js";
import { releaseCheck } from "./release.js";

export interface DeliveryWorkerOptions {
  database: Database;
  channels: Partial<Record<OutOfAppChannelName, Channel>>;
  clock: Clock;
  logger: Logger;
  metrics?: Registry;
  /** Where each successful send records its `sent` event (delivery rule 5), and each final failure its `failed`. */
  analytics?: AnalyticsSink;
  /** Names this worker in locked_by. */
  workerId: string;
  /** Rows claimed per round (default 20). */
  batchSize?: number;
  /** Sends in flight at once, all channels together (default 5). */
  concurrency?: number;
  /** Idle wait between rounds when nothing was due (default 1 s). */
  pollIntervalMs?: number;
  /**
   * How long a claim is exclusive; must exceed the slowest send (default 5 min). A send that could
   * not start by a minute (or a fifth of the lease) before its end, waiting for an SMTP connection, is handed on.
   */
  leaseMs?: number;
  backoff?: BackoffPolicy;
  random?: () => number;
}

type State = "created" | "active" | "stopping" | "stopped";

export class DeliveryWorker {
  private state: State = "created";
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** A wake that came while the loop was claiming: the next wait returns at once (rows may have committed after the claim read). */
  private wokenWhileBusy = false;
  private idleWaiters: (() => void)[] = [];
  private idle = false;
  private readonly metrics: ChannelMetrics | undefined;
  private readonly sentMarks: BatchedSentMarks;

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.metrics = options.metrics ? channelMetrics(options.metrics, () => plans.queueDepth(options.database)) : undefined;
    this.sentMarks = new BatchedSentMarks(options);
  }

  get status(): State {
    return this.state;
  }

  start(): void {
    if (this.state === "active") return;
    this.state = "active";
    this.loop = this.run();
  }

  /** Stops claiming and resolves when in-flight sends have been recorded. */
  async stop(): Promise<void> {
    if (this.state !== "active") return;
    this.state = "stopping";
    this.wake?.();
    await this.loop;
    this.state = "stopped";
  }

  /** Wakes the loop now (rows were enqueued: LISTEN herald_queue, see delivery.ts) instead of at the next poll. */
  notify(): void {
    if (this.wake) this.wake();
    else this.wokenWhileBusy = true;
  }

  /** Resolves the next time the loop waits for a wake or the poll with nothing in flight (tests await it instead of sleeping). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** One round: claims a batch, sends it, records the outcomes. Returns the rows handled. */
  async runOnce(): Promise<number> {
    const jobs = await this.claim(this.options.batchSize ?? 20);
    await Promise.all(jobs);
    return jobs.length;
  }

  /** Claims up to `limit` due rows and starts each one's send; one promise per row, never rejecting. */
  private async claim(limit: number): Promise<Promise<void>[]> {
    const o = this.options;
    const now = o.clock.now();
    const batch = await plans.claimDue(o.database, o.workerId, now, o.leaseMs ?? DEFAULT_LEASE_MS, limit);
    if (batch.length === 0) return [];
    // One read each for the batch's notifications, recipients and preferences, not one per row.
    const singles = batch.filter((r) => r.payload?.mode !== "bundle").map((r) => r.notificationId);
    const userIds = [...new Set(batch.map((r) => r.userId))];
    const [contents, recipients, preferences] = await Promise.all([
      singles.length > 0 ? plans.loadNotifications(o.database, singles) : Promise.resolve([]),
      plans.loadRecipients(o.database, userIds),
      plans.loadPreferences(o.database, userIds),
    ]);
    const byId = new Map(contents.map((n) => [n.id, n]));
    return batch.map((row) =>
      this.handle(row, byId, recipients, preferences).catch((err: unknown) => {
        // The row stays leased and is claimed again when the lease ends.
        o.logger.error({ err, queueId: row.id }, "delivery bookkeeping failed");
      }),
    );
  }

  /**
   * The loop: up to `concurrency` jobs in flight, each on its own; a free
   * slot is refilled at once, so a slow job (a push service that never
   * answers) holds one slot, never the others' starts (issue 15.3).
   */
  private async run(): Promise<void> {
    const o = this.options;
    // 5: each send in flight may hold a pool connection for its release or failure bookkeeping; 16 drained e-mail
    // faster (514 -> 611/s) but took the 30-minute soak to 22 connections of a pool of 20 (bench/RESULTS.md).
    const slots = o.concurrency ?? 5;
    const inFlight = new Set<Promise<void>>();
    let slotFreed: (() => void) | undefined;
    while (this.state === "active") {
      const free = Math.min(slots - inFlight.size, o.batchSize ?? 20);
      let claimed = 0;
      if (free > 0) {
        try {
          const jobs = await this.claim(free);
          claimed = jobs.length;
          for (const job of jobs) {
            inFlight.add(job);
            void job.then(() => {
              inFlight.delete(job);
              slotFreed?.();
            });
          }
        } catch (err) {
          o.logger.warn({ err }, "delivery worker round failed; retrying after the poll interval");
        }
      }
      if (this.state !== "active") break;
      // Slots left and all of them filled: more may be due, claim again at once.
      if (free > 0 && claimed === free && inFlight.size < slots) continue;
      if (this.wokenWhileBusy) {
        this.wokenWhileBusy = false;
        continue;
      }
      this.idle = inFlight.size === 0;
      if (this.idle) for (const resolveIdle of this.idleWaiters.splice(0)) resolveIdle();
      // Wait for a free slot (when full), a wake (rows enqueued) or the poll.
      await new Promise<void>((resolve) => {
        const timer = inFlight.size >= slots ? undefined : setTimeout(resolve, o.pollIntervalMs ?? 1000);
        slotFreed = this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      slotFreed = this.wake = undefined;
      this.idle = false;
    }
    await Promise.all(inFlight);
  }

  private async handle(
    row: ClaimedRow,
    prefetched: Map<string, NotificationContent>,
    recipients: Map<string, Recipient>,
    preferences: Awaited<ReturnType<typeof plans.loadPreferences>>,
  ): Promise<void> {
    const o = this.options;
    const db = o.database;
    let members = row.payload?.mode === "bundle" ? await plans.bundleMembers(db, row) : [];
    const notificationIds = row.payload?.mode === "bundle" ? members.map((m) => m.notificationId) : [row.notificationId];
    const notInApp =
      row.payload?.mode === "bundle"
        ? members.filter((m) => m.payload.mode === "member" && !m.payload.inApp).map((m) => m.notificationId)
        : row.payload?.mode === "single" && !row.payload.inApp
          ? [row.notificationId]
          : [];

    const loaded =
      row.payload?.mode === "bundle"
        ? notificationIds.length > 0
          ? await plans.loadNotifications(db, notificationIds)
          : []
        : prefetched.has(row.notificationId)
          ? [prefetched.get(row.notificationId)!]
          : [];
    const unlessSeen = row.payload?.mode === "single" && row.payload.unlessSeen === true;
    const { keep: notifications, drop, deferUntil } = releaseCheck(row.channel, loaded, preferences.get(row.userId), o.clock.now(), unlessSeen);
    if (notifications.length === 0) {
      const reason = drop.length > 0 ? `cancelled: ${drop[0]!.reason}` : "notification deleted before it was sent";
      await plans.markFinal(db, row, o.workerId, o.clock.now(), "cancelled", reason, members.map((m) => m.id));
      return;
    }
    if (deferUntil) {
      // Inside the user's current quiet hours: back at their end, nothing tried, the attempt not counted.
      row.attempts--;
      await plans.markRetry(db, row, o.workerId, o.clock.now(), deferUntil, "held: inside the user's quiet hours", members.map((m) => m.id), true);
      return;
    }
    if (members.length > 0) {
      // Members about notifications gone, read or switched off leave the bundle; the rest go.
      const kept = new Set(notifications.map((n) => n.id));
      const dropped = members.filter((m) => !kept.has(m.notificationId));
      await plans.cancelMembers(db, dropped.map((m) => m.id), "cancelled: no longer wanted at release", o.clock.now());
      members = members.filter((m) => kept.has(m.notificationId));
    }
    const memberIds = members.map((m) => m.id);
    const channel = o.channels[row.channel];
    const progress: Record<string, unknown> = { ...(row.payload ?? {}) };
    // A send started after this instant might still be going when the lease ends and another claim sends the row too.
    const startBy = row.lockedUntil.getTime() - leaseSafetyMs(o.leaseMs ?? DEFAULT_LEASE_MS);
    const job: ChannelJob = {
      queueId: row.id,
      attempt: row.attempts,
      recipient: recipients.get(row.userId)!,
      notifications,
      progress,
      mayStart: () => o.clock.now().getTime() <= startBy,
    };
    try {
      if (!channel) throw permanent("no_channel", `channel ${row.channel} is not configured on this instance`);
      // The reads above can stall too (a slow database): every channel's send starts inside the lease's safe part.
      if (!job.mayStart()) throw fenced("not started: the claim's lease is nearly over");
      await channel.send(job);
    } catch (raw) {
      const err = asChannelError(raw);
      const now = o.clock.now();
      row.payload = { ...(row.payload ?? {}), ...progress } as ClaimedRow["payload"];
      const reason = `${err.code}: ${err.message}`.slice(0, 1000);
      if (err.code === FENCED) {
        // Nothing was tried (no failure to count) and the lease is nearly over: the row goes back, due now, for
        // the next claim. While the SMTP pool stays saturated that can repeat; no attempt is spent on it.
        row.attempts--;
        const handedOn = await plans.markRetry(db, row, o.workerId, now, now, reason, memberIds, true);
        o.logger.warn({ queueId: row.id, channel: row.channel, handedOn }, "delivery not started before its lease neared its end; handed on");
        return;
      }
      this.metrics?.failures.inc({ channel: row.channel, kind: err.kind });
      if (err.deferUntil) {
        // Nothing was tried (the destination is paused): back at the end of the pause, the attempt not counted.
        row.attempts--;
        await plans.markRetry(db, row, o.workerId, now, err.deferUntil, reason, memberIds, true);
        o.logger.info({ queueId: row.id, channel: row.channel, nextAt: err.deferUntil, reason }, "delivery deferred");
        return;
      }
      if (err.retryable && row.attempts < row.maxAttempts) {
        const nextAt = new Date(now.getTime() + backoffDelay(row.attempts, o.backoff ?? DEFAULT_BACKOFF, o.random));
        if (await plans.markRetry(db, row, o.workerId, now, nextAt, reason, memberIds)) {
          o.logger.warn({ queueId: row.id, channel: row.channel, attempt: row.attempts, nextAt, reason }, "delivery failed; will retry");
        } else {
          o.logger.warn({ queueId: row.id, channel: row.channel, reason }, "delivery failed after its lease ran out; the row is a later claim's, its outcome not written");
        }
        return;
      }
      if (await plans.markFinal(db, row, o.workerId, now, "failed", reason, memberIds)) {
        this.metrics?.gaveUp.inc({ channel: row.channel });
        await plans.markNotificationsFailed(db, notInApp, now);
        // Analytics count a channel's final failure per notification (docs/delivery.md, Analytics).
        for (const n of notifications) o.analytics?.record({ notificationId: n.id, userId: row.userId, eventType: "failed", channel: row.channel, metadata: { channel: row.channel, reason: err.code }, timestamp: now });
      }
      o.logger.warn({ queueId: row.id, channel: row.channel, attempts: row.attempts, reason }, "delivery gave up");
      return;
    }
    const payload = { ...(row.payload ?? {}), ...progress } as ClaimedRow["payload"];
    const { held, now } = await this.sentMarks.mark({ id: row.id, payload, memberIds, notificationIds: notifications.map((n) => n.id) });
    if (held) {
      this.metrics?.sends.inc({ channel: row.channel });
      for (const n of notifications) {
        o.analytics?.record({ notificationId: n.id, userId: row.userId, eventType: "sent", metadata: { channel: row.channel }, timestamp: now });
      }
    } else {
      o.logger.warn({ queueId: row.id }, "sent after its lease ran out, but a later claim of the row had already settled it (or the row is gone): this send is not counted");
    }
  }
}

const DEFAULT_LEASE_MS = 300_000;

/** How long before its lease ends a send may no longer start: a minute, as a digest's (src/digests/tuning.ts), or a fifth of a shorter lease. */
const leaseSafetyMs = (leaseMs: number) => Math.min(60_000, leaseMs / 5);

/** Runs of a sent mark that lost a lock race before its rows are left to their lease. */
const MARK_ATTEMPTS = 3;

/**
 * The worker's successful sends recorded together (src/db GroupCommit): the
 * marks of sends that finish in one event-loop turn, or while the previous
 * statement runs, share one statement instead of one each. Each caller learns
 * whether its row was still its own and the instant recorded as sent.
 */
class BatchedSentMarks {
  private readonly commit: GroupCommit<plans.SentMark, { held: boolean; now: Date }>;

  constructor(o: Pick<DeliveryWorkerOptions, "database" | "clock">) {
    this.commit = new GroupCommit(
      async (marks) => {
        const now = o.clock.now();
        // Two claims of one row (its lease ran out mid-send) may finish in one batch: the row is counted once.
        const first = new Map<string, plans.SentMark>();
        for (const m of marks) if (!first.has(m.id)) first.set(m.id, m);
        for (let attempt = 1; ; attempt++) {
          try {
            const held = await plans.markSent(o.database, now, [...first.values()]);
            return marks.map((m) => ({ status: "fulfilled" as const, value: { held: held.has(m.id) && first.get(m.id) === m, now } }));
          } catch (err) {
            // A deadlock with another writer of these notifications (read-all, an erasure) cancels the whole
            // statement, whose rows were all sent: run it again rather than leave them to be sent twice.
            // Otherwise each row stays leased to us and is sent again once the lease ends (the caller logs it).
            if (!isLockConflict(err) || attempt >= MARK_ATTEMPTS) throw err;
          }
        }
      },
      { collectTurn: true },
    );
  }

  mark(mark: plans.SentMark): Promise<{ held: boolean; now: Date }> {
    return this.commit.submit(mark);
  }
}
