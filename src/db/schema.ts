/**
 * Row shapes that queries outside src/db return, each next to the column
 * list that selects it. The tables themselves are defined only by
 * `migrations/*.sql`; these describe what a SELECT gives back, not the
 * tables, and nothing checks them against the database.
 */
import type { NotificationDto } from "../protocol/index.js";

/**
 * A notification's columns under the wire names (src/protocol's
 * NotificationDto), for every statement that returns whole notifications:
 * the inbox, the creation, the sync pages. `in_app`, `idempotency_key` and
 * `broadcast_id` are not selected (nothing reads them from a row).
 */
export const NOTIFICATION_COLUMNS = `id, seq, user_id AS "userId", type, priority, title, message, description, icon,
  action_url AS "actionUrl", action_label AS "actionLabel", read, archived, delivery_status AS "deliveryStatus",
  sent_at AS "sentAt", delivered_at AS "deliveredAt", read_at AS "readAt", related_id AS "relatedId", data,
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** A notification as `NOTIFICATION_COLUMNS` selects it: the wire fields as the driver returns them (`toNotificationDto` maps it). */
export interface NotificationRow extends Omit<NotificationDto, "seq" | "priority" | "deliveryStatus" | "sentAt" | "deliveredAt" | "readAt" | "createdAt" | "updatedAt"> {
  /** bigint: PGlite returns a number, node-postgres a string; `Number()` it. */
  seq: number | string;
  priority: string;
  deliveryStatus: string;
  sentAt: Date | null;
  deliveredAt: Date | null;
  readAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}
