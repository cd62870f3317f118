/** The digest history as callers see it (`EmailDigest`, the guide's model) and its queries. */
import type { Queryable } from "../db/index.js";
import type { DigestRow } from "./claim.js";
import type { DigestFrequency } from "./schedule.js";

export type DigestStatus = "pending" | "sent" | "skipped" | "failed";

export interface EmailDigest {
  id: string;
  userId: string;
  frequency: DigestFrequency;
  status: DigestStatus;
  /** End of the window covered (the claim key); for a test digest, when it was requested. */
  scheduledFor: string;
  windowStart: string | null;
  sentAt: string | null;
  emailAddress: string;
  subject: string | null;
  htmlContent: string | null;
  textContent: string | null;
  notificationCount: number;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  messageId: string | null;
  isTest: boolean;
  createdAt: string;
  updatedAt: string;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

export function toEmailDigest(r: DigestRow): EmailDigest {
  return {
    id: r.id,
    userId: r.user_id,
    frequency: r.frequency,
    status: r.status as DigestStatus,
    scheduledFor: iso(r.scheduled_for)!,
    windowStart: iso(r.window_start),
    sentAt: iso(r.sent_at),
    emailAddress: r.email_address,
    subject: r.subject,
    htmlContent: r.html_content,
    textContent: r.text_content,
    notificationCount: r.notification_count,
    attempts: r.attempts,
    nextAttemptAt: iso(r.next_attempt_at),
    lastError: r.last_error,
    messageId: r.message_id,
    isTest: r.is_test,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

export interface DigestCounts {
  totalSent: number;
  totalFailed: number;
  totalSkipped: number;
  totalPending: number;
  /** Test digests (sendTestDigest), counted apart: every other total and last time covers scheduled digests only. */
  totalTest: number;
  lastSentAt: string | null;
  lastFailedAt: string | null;
  lastError: string | null;
}

export async function digestCounts(db: Queryable, userId: string): Promise<DigestCounts> {
  const [r] = await db.query<{
    sent: number;
    failed: number;
    skipped: number;
    pending: number;
    test: number;
    last_sent_at: Date | null;
    last_failed_at: Date | null;
    last_error: string | null;
  }>(
    `SELECT count(*) FILTER (WHERE status = 'sent' AND NOT is_test)::int AS sent,
            count(*) FILTER (WHERE status = 'failed' AND NOT is_test)::int AS failed,
            count(*) FILTER (WHERE status = 'skipped' AND NOT is_test)::int AS skipped,
            count(*) FILTER (WHERE status = 'pending' AND NOT is_test)::int AS pending,
            count(*) FILTER (WHERE is_test)::int AS test,
            max(sent_at) FILTER (WHERE status = 'sent' AND NOT is_test) AS last_sent_at,
            max(updated_at) FILTER (WHERE status = 'failed' AND NOT is_test) AS last_failed_at,
            (SELECT last_error FROM email_digests f WHERE f.user_id = $1 AND f.status = 'failed' AND NOT f.is_test
              ORDER BY f.updated_at DESC LIMIT 1) AS last_error
       FROM email_digests WHERE user_id = $1`,
    [userId],
  );
  return {
    totalSent: r?.sent ?? 0,
    totalFailed: r?.failed ?? 0,
    totalSkipped: r?.skipped ?? 0,
    totalPending: r?.pending ?? 0,
    totalTest: r?.test ?? 0,
    lastSentAt: iso(r?.last_sent_at ?? null),
    lastFailedAt: iso(r?.last_failed_at ?? null),
    lastError: r?.last_error ?? null,
  };
}

export async function listDigestRows(
  db: Queryable,
  userId: string,
  page: { limit: number; offset: number },
): Promise<{ rows: DigestRow[]; total: number }> {
  const [rows, count] = await Promise.all([
    db.query<DigestRow>(
      `SELECT * FROM email_digests WHERE user_id = $1 ORDER BY created_at DESC, scheduled_for DESC, id LIMIT $2 OFFSET $3`,
      [userId, page.limit, page.offset],
    ),
    db.query<{ total: number }>(`SELECT count(*)::int AS total FROM email_digests WHERE user_id = $1`, [userId]),
  ]);
  return { rows, total: count[0]?.total ?? 0 };
}

export interface DigestRecipient {
  id: string;
  email: string | null;
  timezone: string;
  enabled: boolean;
  frequency: DigestFrequency;
}

/** The user's address, zone and digest settings (defaults when no preferences row: enabled, daily). */
export async function digestRecipient(db: Queryable, userId: string): Promise<DigestRecipient | undefined> {
  const [r] = await db.query<DigestRecipient>(
    `SELECT u.id, u.email, u.timezone,
            coalesce(p.email_digest_enabled, true) AS enabled,
            coalesce(p.email_digest_frequency, 'daily') AS frequency
       FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id
      WHERE u.id = $1`,
    [userId],
  );
  return r;
}
