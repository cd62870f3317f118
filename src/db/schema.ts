/**
 * Row shapes that queries outside src/db return. The tables themselves are
 * defined only by `migrations/*.sql`; these interfaces describe what a
 * SELECT gives back, not the tables, and nothing checks them against the
 * database: keep each next to the column list it describes.
 */

/**
 * A notification as `NOTIFICATION_COLUMNS` (src/notifications/sql.ts) selects
 * it: the guide's camelCase names by alias. `in_app` is not selected.
 */
export interface NotificationRow {
  id: string;
  /** bigint: PGlite returns a number, node-postgres a string; `Number()` it. */
  seq: number | string;
  userId: string;
  type: string;
  priority: string;
  title: string;
  message: string;
  description: string | null;
  icon: string | null;
  actionUrl: string | null;
  actionLabel: string | null;
  read: boolean;
  archived: boolean;
  deliveryStatus: string;
  sentAt: Date | null;
  deliveredAt: Date | null;
  readAt: Date | null;
  relatedId: string | null;
  data: Record<string, unknown> | null;
  idempotencyKey: string | null;
  broadcastId: string | null;
  createdAt: Date;
  updatedAt: Date;
}
