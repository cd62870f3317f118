/**
 * The notification's wire shape lives in src/protocol (shared with the SDK);
 * this module maps database rows to it and holds the guide's default
 * priorities.
 */
import type { NotificationRow } from "../db/index.js";
import type { DeliveryStatus, KnownNotificationType, NotificationDto, Priority } from "../protocol/index.js";

export { DELIVERY_STATUSES, NOTIFICATION_TYPES, PRIORITIES } from "../protocol/index.js";
export type { DeliveryStatus, KnownNotificationType, NotificationDto, Priority } from "../protocol/index.js";

/** The guide's table "Notification Types": default priority per type. */
export const DEFAULT_PRIORITY: Record<KnownNotificationType, Priority> = {
  new_message: "high",
  booking_request: "high",
  booking_confirmed: "normal",
  payment_received: "high",
  platform_update: "low",
  security_alert: "critical",
};

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

/** JSON texts of new notifications' DTOs, written once and shared by their push frame and their 201 body. */
const dtoJson = new WeakMap<NotificationDto, string>();

/**
 * Keeps JSON.stringify(dto) with `dto`; returns `dto`. Only for a DTO nobody changes afterwards (a REST
 * creation's: CreateOptions.serializeOnce), never one handed to a library caller, whose later frames would
 * carry the stale text.
 */
export function withJson(dto: NotificationDto): NotificationDto {
  dtoJson.set(dto, JSON.stringify(dto));
  return dto;
}

/** JSON.stringify(dto): the text withJson kept, else made now. */
export function notificationJson(dto: NotificationDto): string {
  return dtoJson.get(dto) ?? JSON.stringify(dto);
}

/** The text withJson kept for `dto`, if any. */
export function keptNotificationJson(dto: NotificationDto): string | undefined {
  return dtoJson.get(dto);
}

/** The guide's default priority for a known type, `normal` for custom types. */
export function defaultPriorityOf(type: string): Priority {
  return Object.hasOwn(DEFAULT_PRIORITY, type) ? DEFAULT_PRIORITY[type as KnownNotificationType] : "normal";
}
