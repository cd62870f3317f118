/**
 * The two reads a connection makes: its unread badge and what it has not
 * acknowledged (delivery_status pending or sent), oldest first, after a cursor.
 * Both are served by partial indexes of 0001 (notifications_unread_idx,
 * notifications_undelivered_idx).
 */
import type { Queryable } from "../db/index.js";
import type { DeliveryStatus, NotificationDto, Priority } from "../notifications/types.js";

const UNREAD_COUNT = `
SELECT count(*)::int AS count
  FROM notifications
 WHERE user_id = $1 AND read = false AND archived = false`;

// One row more than the page, to know whether it is truncated.
const UNACKED_AFTER = `
SELECT id, seq, user_id, type, priority, title, message, description, icon, action_url, action_label,
       read, archived, delivery_status, sent_at, delivered_at, read_at, related_id, data, created_at, updated_at
  FROM notifications
 WHERE user_id = $1 AND seq > $2 AND delivery_status IN ('pending', 'sent')
 ORDER BY seq ASC
 LIMIT $3`;

interface Row {
  id: string;
  seq: string | number | bigint;
  user_id: string;
  type: string;
  priority: string;
  title: string;
  message: string;
  description: string | null;
  icon: string | null;
  action_url: string | null;
  action_label: string | null;
  read: boolean;
  archived: boolean;
  delivery_status: string;
  sent_at: Date | string | null;
  delivered_at: Date | string | null;
  read_at: Date | string | null;
  related_id: string | null;
  data: Record<string, unknown> | string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

function toDto(r: Row): NotificationDto {
  return {
    id: r.id,
    seq: Number(r.seq),
    userId: r.user_id,
    type: r.type,
    priority: r.priority as Priority,
    title: r.title,
    message: r.message,
    description: r.description,
    icon: r.icon,
    actionUrl: r.action_url,
    actionLabel: r.action_label,
    read: r.read,
    archived: r.archived,
    deliveryStatus: r.delivery_status as DeliveryStatus,
    sentAt: iso(r.sent_at),
    deliveredAt: iso(r.delivered_at),
    readAt: iso(r.read_at),
    relatedId: r.related_id,
    data: typeof r.data === "string" ? (JSON.parse(r.data) as Record<string, unknown>) : r.data,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

export async function unreadCount(db: Queryable, userId: string): Promise<number> {
  const [row] = await db.query<{ count: number }>(UNREAD_COUNT, [userId]);
  return Number(row?.count ?? 0);
}

export interface SyncPage {
  notifications: NotificationDto[];
  /** The last seq in the page, or the requested cursor when the page is empty. */
  cursor: number;
  truncated: boolean;
}

export async function unacknowledgedAfter(db: Queryable, userId: string, cursor: number, limit: number): Promise<SyncPage> {
  const rows = await db.query<Row>(UNACKED_AFTER, [userId, cursor, limit + 1]);
  const truncated = rows.length > limit;
  const notifications = (truncated ? rows.slice(0, limit) : rows).map(toDto);
  const last = notifications[notifications.length - 1];
  return { notifications, cursor: last ? last.seq : cursor, truncated };
}
