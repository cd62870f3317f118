/**
 * Sends leased digests: render once (stored before the first send, so a retry
 * or a takeover resends the same message with the same Message-ID), send
 * through the mailer, then record the outcome. Retry decisions come from
 * classifyMailError: 5xx is final, 4xx and connection errors back off.
 *
 * A holder can stall (GC pause, SIGSTOP, a frozen VM) past its lease while
 * another instance takes its digests over. So before each send it renews its
 * lease in the database (the claim check: no longer its digest, no send), the
 * mailer refuses to start the SMTP transaction once the renewed lease is about
 * to end (the pool may hold the message a while), and each accepted message is
 * marked sent at once rather than at the end of the batch. What remains is
 * the stall between the server's acceptance and our mark (RFC 1047): the next
 * holder sends that digest again, with the same Message-ID.
 */
import pMap from "p-map";
import type { AnalyticsSink } from "../analytics/index.js";
import { backoffDelay } from "../backoff/index.js";
import { Counter, type Registry } from "prom-client";
import { BatchWriter, type Queryable } from "../db/index.js";
import { type Mailer, MailFencedError, classifyMailError } from "../mail/index.js";
import type { Clock, Logger } from "../observability/index.js";
import {
  type ContentRow,
  type DigestRow,
  type RenderedDigest,
  digestContent,
  markAttemptFailed,
  markSent,
  markSkipped,
  renewLease,
  storeRendered,
} from "./claim.js";
import { digestHeaders, digestMessageId, renderDigest } from "./render.js";
import { resolveTimeZone } from "./schedule.js";
import { DEFAULT_TUNING, type DigestTuning } from "./tuning.js";

/** Attempts before a digest is given up as failed (default; see DigestTuning.maxAttempts). */
export const MAX_ATTEMPTS = DEFAULT_TUNING.maxAttempts;
/** Items listed per type in a digest, and types listed (counts still cover every notification of the window). */
export const ITEMS_PER_TYPE = 10;
export const TYPES_PER_DIGEST = 20;
/** Messages in flight at once; the mailer's pool queues beyond its connections. */
const SEND_CONCURRENCY = 16;

/**
 * 1 min, 2, 4, 8... capped at 1 h (by default), plus up to 20% spread so a backlog does not retry in
 * one burst. Never sooner than nominal, and stable per digest (the spread comes from its id), so a
 * recomputed retry time does not move.
 */
export function backoffMs(attempt: number, id = "", tuning: Pick<DigestTuning, "retryBaseMs" | "retryCapMs"> = DEFAULT_TUNING): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return backoffDelay(attempt, { baseMs: tuning.retryBaseMs, maxMs: tuning.retryCapMs, jitter: [1, 1.2] }, () => (h % 1000) / 1000);
}

export interface DigestMetrics {
  sent: Counter<"frequency">;
  failed: Counter<"frequency" | "reason">;
  skipped: Counter<"frequency">;
  retried: Counter<"frequency">;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function digestMetrics(registry: Registry): DigestMetrics {
  return {
    sent: counter(registry, "herald_digests_sent_total", "Digest e-mails accepted by the mail server (or written to the outbox)", ["frequency"]),
    failed: counter(registry, "herald_digests_failed_total", "Digests given up as failed", ["frequency", "reason"]),
    skipped: counter(registry, "herald_digests_skipped_total", "Claimed digests with nothing left to say", ["frequency"]),
    retried: counter(registry, "herald_digests_retried_total", "Digest send attempts that failed and will be retried", ["frequency"]),
  };
}

export interface DeliveryContext {
  db: Queryable;
  /**
   * The process's one mailer (the e-mail channel's too), or a function that
   * builds it on first use (the service's own, while it builds one).
   */
  mailer: Pick<Mailer, "send"> | (() => Pick<Mailer, "send">);
  clock: Clock;
  logger: Logger;
  metrics: DigestMetrics;
  appUrl: string;
  /** The recipient's signed unsubscribe link. */
  unsubscribeUrl: (userId: string) => string;
  from: string;
  /** Lease owner name of this instance. */
  owner: string;
  tuning: DigestTuning;
  /** Zone per user id, for the times shown in the e-mail. */
  timeZones: (userIds: string[]) => Promise<Map<string, string>>;
  /** Where each digest e-mail records its analytics event (recordDigest). */
  analytics?: AnalyticsSink;
}

export interface DeliveryOutcome {
  sent: number;
  skipped: number;
  retrying: number;
  failed: number;
  /** Not attempted: the lease was lost or about to run out; another pass (or instance) takes them. */
  abandoned: number;
}

export async function deliverDigests(ctx: DeliveryContext, rows: DigestRow[]): Promise<DeliveryOutcome> {
  const outcome: DeliveryOutcome = { sent: 0, skipped: 0, retrying: 0, failed: 0, abandoned: 0 };
  const { maxAttempts, leaseMs, leaseSafetyMs } = ctx.tuning;
  const live: DigestRow[] = [];
  for (const row of rows) {
    if (row.attempts > maxAttempts) {
      // Leased again and again without an outcome (crashes or stalls): stop here.
      await markAttemptFailed(ctx.db, { id: row.id, owner: ctx.owner, now: ctx.clock.now(), error: `gave up after ${maxAttempts} attempts`, retryAt: undefined });
      ctx.metrics.failed.inc({ frequency: row.frequency, reason: "exhausted" });
      recordDigest(ctx, row, "failed");
      outcome.failed++;
    } else live.push(row);
  }

  const { messages, lost } = await renderMissing(ctx, live);
  outcome.abandoned += lost;
  // A test digest is sent even when empty: it shows the user what a digest looks like.
  const hasContent = (r: DigestRow) => r.is_test || (messages.get(r.id)?.count ?? 0) > 0;
  const ours = live.filter((r) => messages.has(r.id));
  const empty = ours.filter((r) => !hasContent(r)).map((r) => r.id);
  await markSkipped(ctx.db, empty, ctx.owner, ctx.clock.now());
  for (const r of ours) if (empty.includes(r.id)) ctx.metrics.skipped.inc({ frequency: r.frequency });
  outcome.skipped += empty.length;

  const toSend = ours.filter(hasContent);
  const marks = new SentMarks(ctx);
  // One digest at a time per slot, SEND_CONCURRENCY slots: the mailer's pool queues beyond its connections.
  const sendOne = async (row: DigestRow): Promise<void> => {
    const m = messages.get(row.id)!;
    // The claim check: still ours (not taken over after a stall, not done)?
    // It also renews the lease, so a long batch does not run out of it.
    const renewedAt = ctx.clock.now();
    const leaseUntil = await renewLease(ctx.db, { id: row.id, owner: ctx.owner, now: renewedAt, leaseUntil: new Date(renewedAt.getTime() + leaseMs) });
    if (!leaseUntil) {
      outcome.abandoned++;
      return;
    }
    // Checked again when a connection starts the transaction: past this
    // instant the digest may pass to another instance before we finish.
    const startBy = leaseUntil.getTime() - leaseSafetyMs;
    try {
      await (typeof ctx.mailer === "function" ? ctx.mailer() : ctx.mailer).send({
        to: row.email_address,
        subject: m.subject,
        html: m.html,
        text: m.text,
        headers: digestHeaders(ctx.unsubscribeUrl(row.user_id), ctx.from, row.id),
        messageId: m.messageId,
        mayStart: () => ctx.clock.now().getTime() <= startBy,
      });
      marks.add(row.id);
      ctx.metrics.sent.inc({ frequency: row.frequency });
      recordDigest(ctx, row, "sent");
    } catch (err) {
      if (err instanceof MailFencedError) {
        // Nothing was sent and the lease is (nearly) gone: leave the digest to its next holder.
        outcome.abandoned++;
        return;
      }
      const failure = classifyMailError(err);
      // A test digest is one attempt, reported to the caller at once. An
      // outage (the server never reached) is no attempt: it is waited out.
      const final = !failure.retryable || (failure.reachedServer && row.attempts >= maxAttempts) || row.is_test;
      const now = ctx.clock.now();
      const retryAt = final ? undefined : new Date(now.getTime() + backoffMs(row.attempts + Number(row.unreached ?? 0), row.id, ctx.tuning));
      await markAttemptFailed(ctx.db, { id: row.id, owner: ctx.owner, now, error: failure.message, retryAt, reached: failure.reachedServer || row.is_test });
      ctx.logger.warn({ digestId: row.id, attempt: row.attempts, error: failure.message, final }, "digest send failed");
      if (final) {
        ctx.metrics.failed.inc({ frequency: row.frequency, reason: failure.retryable ? "exhausted" : "permanent" });
        recordDigest(ctx, row, "failed");
        outcome.failed++;
      } else {
        ctx.metrics.retried.inc({ frequency: row.frequency });
        outcome.retrying++;
      }
    }
  };
  try {
    await pMap(toSend, sendOne, { concurrency: SEND_CONCURRENCY });
  } finally {
    await marks.flush();
  }
  outcome.sent += marks.count;
  return outcome;
}

/**
 * Analytics count the digest channel per e-mail, keyed by the digest's id,
 * never per notification it summarises (docs/delivery.md, Analytics); a test
 * digest is not counted.
 */
function recordDigest(ctx: DeliveryContext, row: DigestRow, outcome: "sent" | "failed"): void {
  if (row.is_test) return;
  ctx.analytics?.record({ notificationId: row.id, userId: row.user_id, eventType: outcome, channel: "digest", metadata: { frequency: row.frequency }, timestamp: ctx.clock.now() });
}

/**
 * Marks accepted digests sent as they are accepted, in group commits
 * (src/db BatchWriter): one UPDATE in flight at a time, carrying every id
 * accepted while the previous one ran. The gap between acceptance and mark
 * stays one round trip.
 */
class SentMarks {
  count = 0;
  private error: unknown;
  private readonly marks: BatchWriter<string>;

  constructor(ctx: DeliveryContext) {
    this.marks = new BatchWriter(async (ids) => {
      try {
        await markSent(ctx.db, ids, ctx.clock.now());
      } catch (err) {
        // These and the ids accepted meanwhile stay 'pending' under our lease: the next holder sends them again (same Message-ID).
        this.error ??= err;
        this.marks.discard();
      }
    });
  }

  add(id: string): void {
    this.count++;
    this.marks.add(id);
  }

  /** Resolves when every id added so far is marked; rethrows a failed mark. */
  async flush(): Promise<void> {
    await this.marks.flush();
    if (this.error) throw this.error;
  }
}

/**
 * The message per digest: the stored one for a retry, else rendered now and
 * stored before any send. A digest whose fresh rendering could not be stored
 * (no longer ours) is left out and counted as lost.
 */
async function renderMissing(ctx: DeliveryContext, rows: DigestRow[]): Promise<{ messages: Map<string, RenderedDigest>; lost: number }> {
  const out = new Map<string, RenderedDigest>();
  const fresh: DigestRow[] = [];
  for (const r of rows) {
    if (r.html_content !== null && r.subject !== null && r.text_content !== null) {
      out.set(r.id, {
        id: r.id,
        subject: r.subject,
        html: r.html_content,
        text: r.text_content,
        count: r.notification_count,
        messageId: r.message_id ?? digestMessageId(r.id, ctx.appUrl),
      });
    } else fresh.push(r);
  }
  if (fresh.length === 0) return { messages: out, lost: 0 };

  const content = await digestContent(ctx.db, fresh.map((r) => r.id), ITEMS_PER_TYPE, TYPES_PER_DIGEST);
  const byDigest = new Map<string, ContentRow[]>();
  for (const c of content.items) {
    let list = byDigest.get(c.digest_id);
    if (!list) {
      list = [];
      byDigest.set(c.digest_id, list);
    }
    list.push(c);
  }
  const countsByDigest = new Map<string, Map<string, number>>();
  for (const c of content.counts) {
    let m = countsByDigest.get(c.digest_id);
    if (!m) {
      m = new Map();
      countsByDigest.set(c.digest_id, m);
    }
    m.set(c.type, Number(c.count));
  }
  const zones = await ctx.timeZones([...new Set(fresh.map((r) => r.user_id))]);
  const rendered: RenderedDigest[] = [];
  for (const r of fresh) {
    const items = byDigest.get(r.id) ?? [];
    const countsByType = countsByDigest.get(r.id) ?? new Map<string, number>();
    const email = renderDigest({
      frequency: r.frequency,
      items: items.map((c) => ({
        id: c.id,
        type: c.type,
        priority: c.priority,
        title: c.title,
        message: c.message,
        actionUrl: c.action_url,
        actionLabel: c.action_label,
        createdAt: new Date(c.created_at),
      })),
      countsByType,
      appUrl: ctx.appUrl,
      unsubscribeUrl: ctx.unsubscribeUrl(r.user_id),
      timeZone: resolveTimeZone(zones.get(r.user_id)),
      isTest: r.is_test,
    });
    const message: RenderedDigest = { id: r.id, ...email, messageId: digestMessageId(r.id, ctx.appUrl) };
    out.set(r.id, message);
    if (email.count > 0 || r.is_test) rendered.push(message);
  }
  const stored = await storeRendered(ctx.db, rendered, ctx.owner, ctx.clock.now());
  let lost = 0;
  for (const r of rendered) {
    if (!stored.has(r.id)) {
      out.delete(r.id);
      lost++;
    }
  }
  return { messages: out, lost };
}
