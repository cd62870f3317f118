/** What operators see of the queue (GET /api/admin/queue): rows with state, attempts and last error. */
import type { Queryable } from "../db/index.js";

export const QUEUE_STATUSES = ["held", "pending", "processing", "sent", "failed", "cancelled"] as const;
export type QueueStatus = (typeof QUEUE_STATUSES)[number];

export interface QueueListing {
  rows: {
    id: string;
    notificationId: string;
    userId: string;
    channel: string;
    /** single notification, hourly bundle, or member of a bundle. */
    kind: "single" | "bundle" | "member";
    status: string;
    attempts: number;
    maxAttempts: number;
    nextRetryAt: string;
    lastError: string | null;
    lockedBy: string | null;
    sentAt: string | null;
    createdAt: string;
    updatedAt: string;
  }[];
  total: number;
}

export async function listQueue(
  db: Queryable,
  filter: { status?: QueueStatus; channel?: string; userId?: string; limit: number; offset: number },
): Promise<QueueListing> {
  const where = `($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR channel = $2) AND ($3::text IS NULL OR user_id = $3)`;
  const params = [filter.status ?? null, filter.channel ?? null, filter.userId ?? null];
  const rows = await db.query<{
    id: string;
    notification_id: string;
    user_id: string;
    channel: string;
    kind: string | null;
    status: string;
    attempts: number;
    max_attempts: number;
    next_retry_at: Date;
    last_error: string | null;
    locked_by: string | null;
    sent_at: Date | null;
    created_at: Date;
    updated_at: Date;
  }>(
    `SELECT id, notification_id, user_id, channel, payload->>'mode' AS kind, status, attempts, max_attempts, next_retry_at,
            last_error, locked_by, sent_at, created_at, updated_at
       FROM notification_queue WHERE ${where}
      ORDER BY updated_at DESC, id LIMIT $4 OFFSET $5`,
    [...params, filter.limit, filter.offset],
  );
  const [count] = await db.query<{ n: string | number }>(`SELECT count(*) AS n FROM notification_queue WHERE ${where}`, params);
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    total: Number(count?.n ?? 0),
    rows: rows.map((r) => ({
      id: r.id,
      notificationId: r.notification_id,
      userId: r.user_id,
      channel: r.channel,
      kind: r.kind === "bundle" || r.kind === "member" ? r.kind : "single",
      status: r.status,
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      nextRetryAt: iso(r.next_retry_at)!,
      lastError: r.last_error,
      lockedBy: r.locked_by,
      sentAt: iso(r.sent_at),
      createdAt: iso(r.created_at)!,
      updatedAt: iso(r.updated_at)!,
    })),
  };
}
