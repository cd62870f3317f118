/**
 * Sends leased digests: render once (stored before the first send, so a retry
 * or a takeover resends the same message with the same Message-ID), send
 * through the mailer, then record the outcome. Retry decisions come from
 * classifyMailError: 5xx is final, 4xx and connection errors back off.
 */
import { Counter, type Registry } from "prom-client";
import type { Queryable } from "../db/index.js";
import { type Mailer, classifyMailError } from "../mail/index.js";
import type { Clock, Logger } from "../observability/index.js";
import {
  type ContentRow,
  type DigestRow,
  type RenderedDigest,
  digestContent,
  markAttemptFailed,
  markSent,
  markSkipped,
  storeRendered,
} from "./claim.js";
import { digestHeaders, digestMessageId, renderDigest } from "./render.js";
import { resolveTimeZone } from "./schedule.js";

/** Attempts before a digest is given up as failed. */
export const MAX_ATTEMPTS = 5;
/** Items listed per digest (counts still cover the whole window). */
export const ITEMS_PER_DIGEST = 50;
const BACKOFF_BASE_MS = 60_000;
const BACKOFF_CAP_MS = 3_600_000;
/** Stop starting sends this long before the lease ends (longer than one SMTP timeout). */
const LEASE_SAFETY_MS = 60_000;
/** Messages in flight at once; the pooled transport queues beyond its connections. */
const SEND_CONCURRENCY = 16;

/** 1 min, 2, 4, 8... capped at 1 h, plus up to 20% spread (stable per digest) so a backlog does not retry in one burst. */
export function backoffMs(attempt: number, id = ""): number {
  const base = Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1), BACKOFF_CAP_MS);
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return base + Math.floor((base * 0.2 * (h % 1000)) / 1000);
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
  mailer: () => Mailer;
  clock: Clock;
  logger: Logger;
  metrics: DigestMetrics;
  appUrl: string;
  from: string;
  /** Lease owner name of this instance. */
  owner: string;
  /** Zone per user id, for the times shown in the e-mail. */
  timeZones: (userIds: string[]) => Promise<Map<string, string>>;
}

export interface DeliveryOutcome {
  sent: number;
  skipped: number;
  retrying: number;
  failed: number;
  /** Not attempted because the lease was about to run out; another pass takes them. */
  abandoned: number;
}

export async function deliverDigests(ctx: DeliveryContext, rows: DigestRow[]): Promise<DeliveryOutcome> {
  const outcome: DeliveryOutcome = { sent: 0, skipped: 0, retrying: 0, failed: 0, abandoned: 0 };
  const live: DigestRow[] = [];
  for (const row of rows) {
    if (row.attempts > MAX_ATTEMPTS) {
      // Leased again and again without an outcome (crashes or stalls): stop here.
      await markAttemptFailed(ctx.db, { id: row.id, owner: ctx.owner, now: ctx.clock.now(), error: `gave up after ${MAX_ATTEMPTS} attempts`, retryAt: undefined });
      ctx.metrics.failed.inc({ frequency: row.frequency, reason: "exhausted" });
      outcome.failed++;
    } else live.push(row);
  }

  const messages = await renderMissing(ctx, live);
  // A test digest is sent even when empty: it shows the user what a digest looks like.
  const hasContent = (r: DigestRow) => r.is_test || (messages.get(r.id)?.count ?? 0) > 0;
  const empty = live.filter((r) => !hasContent(r)).map((r) => r.id);
  await markSkipped(ctx.db, empty, ctx.clock.now());
  for (const r of live) if (empty.includes(r.id)) ctx.metrics.skipped.inc({ frequency: r.frequency });
  outcome.skipped += empty.length;

  const toSend = live.filter(hasContent);
  const delivered: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < toSend.length) {
      const row = toSend[next++]!;
      const m = messages.get(row.id)!;
      // A batch stuck behind a slow server must not send past its lease:
      // once it may have passed to another instance, leave the row to it.
      if (row.lease_until && ctx.clock.now().getTime() > new Date(row.lease_until).getTime() - LEASE_SAFETY_MS) {
        outcome.abandoned++;
        continue;
      }
      try {
        await ctx.mailer().send({
          to: row.email_address,
          subject: m.subject,
          html: m.html,
          text: m.text,
          headers: digestHeaders(ctx.appUrl, ctx.from, row.id),
          messageId: m.messageId,
        });
        delivered.push(row.id);
        ctx.metrics.sent.inc({ frequency: row.frequency });
      } catch (err) {
        const failure = classifyMailError(err);
        // A test digest is one attempt, reported to the caller at once.
        const final = !failure.retryable || row.attempts >= MAX_ATTEMPTS || row.is_test;
        const now = ctx.clock.now();
        const retryAt = final ? undefined : new Date(now.getTime() + backoffMs(row.attempts, row.id));
        await markAttemptFailed(ctx.db, { id: row.id, owner: ctx.owner, now, error: failure.message, retryAt });
        ctx.logger.warn({ digestId: row.id, attempt: row.attempts, error: failure.message, final }, "digest send failed");
        if (final) {
          ctx.metrics.failed.inc({ frequency: row.frequency, reason: failure.retryable ? "exhausted" : "permanent" });
          outcome.failed++;
        } else {
          ctx.metrics.retried.inc({ frequency: row.frequency });
          outcome.retrying++;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SEND_CONCURRENCY, toSend.length) }, worker));
  await markSent(ctx.db, delivered, ctx.clock.now());
  outcome.sent += delivered.length;
  return outcome;
}

/** The message per digest: the stored one for a retry, else rendered now and stored before any send. */
async function renderMissing(ctx: DeliveryContext, rows: DigestRow[]): Promise<Map<string, RenderedDigest>> {
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
  if (fresh.length === 0) return out;

  const content = await digestContent(ctx.db, fresh.map((r) => r.id), ITEMS_PER_DIGEST);
  const byDigest = new Map<string, ContentRow[]>();
  for (const c of content) {
    let list = byDigest.get(c.digest_id);
    if (!list) byDigest.set(c.digest_id, (list = []));
    list.push(c);
  }
  const zones = await ctx.timeZones([...new Set(fresh.map((r) => r.user_id))]);
  const rendered: RenderedDigest[] = [];
  for (const r of fresh) {
    const items = byDigest.get(r.id) ?? [];
    const countsByType = new Map(items.map((c) => [c.type, Number(c.type_count)]));
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
      timeZone: resolveTimeZone(zones.get(r.user_id)),
      isTest: r.is_test,
    });
    const message: RenderedDigest = { id: r.id, ...email, messageId: digestMessageId(r.id, ctx.appUrl) };
    out.set(r.id, message);
    if (email.count > 0 || r.is_test) rendered.push(message);
  }
  await storeRendered(ctx.db, rendered, ctx.clock.now());
  return out;
}
