/**
 * The notification as it leaves Herald (REST, WebSocket, SDK): the guide's
 * fields, dates as ISO strings, plus `seq`, the sync cursor position.
 */
import type { NotificationRow } from "../db/schema.js";

export const NOTIFICATION_TYPES = [
  "new_message",
  "booking_request",
  "booking_confirmed",
  "payment_received",
  "platform_update",
  "security_alert",
] as const;
export type KnownNotificationType = (typeof NOTIFICATION_TYPES)[number];

export const PRIORITIES = ["critical", "high", "normal", "low"] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The guide's table "Notification Types": default priority per type. */
export const DEFAULT_PRIORITY: Record<KnownNotificationType, Priority> = {
  new_message: "high",
  booking_request: "high",
  booking_confirmed: "normal",
  payment_received: "high",
  platform_update: "low",
  security_alert: "critical",
};

export const DELIVERY_STATUSES = ["pending", "sent", "delivered", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface NotificationDto {
  id: string;
  seq: number;
  userId: string;
  type: string;
  priority: Priority;
  title: string;
  message: string;
  description: string | null;
  icon: string | null;
  actionUrl: string | null;
  actionLabel: string | null;
  read: boolean;
  archived: boolean;
  deliveryStatus: DeliveryStatus;
  sentAt: string | null;
  deliveredAt: string | null;
  readAt: string | null;
  relatedId: string | null;
  data: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toNotificationDto(row: NotificationRow): NotificationDto {
  return {
    id: row.id,
    seq: Number(row.seq),
    userId: row.userId,
    type: row.type,
    priority: row.priority as Priority,
    title: row.title,
    message: row.message,
    description: row.description,
    icon: row.icon,
    actionUrl: row.actionUrl,
    actionLabel: row.actionLabel,
    read: row.read,
    archived: row.archived,
    deliveryStatus: row.deliveryStatus as DeliveryStatus,
    sentAt: iso(row.sentAt),
    deliveredAt: iso(row.deliveredAt),
    readAt: iso(row.readAt),
    relatedId: row.relatedId,
    data: row.data ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** The guide's default priority for a known type, `normal` for custom types. */
export function defaultPriorityOf(type: string): Priority {
  return Object.hasOwn(DEFAULT_PRIORITY, type) ? DEFAULT_PRIORITY[type as KnownNotificationType] : "normal";
}
