/**
 * Herald's wire protocol: what leaves the server over REST and WebSocket, as
 * types and constants shared by the server, the client SDK (src/client) and
 * the React package (src/react). A leaf: it imports nothing, so the browser
 * bundle never pulls server code. docs/websocket.md describes the messages
 * and close codes (docs/asyncapi.yaml, checked against this file by a test).
 */

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

export const DELIVERY_STATUSES = ["pending", "sent", "delivered", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The notification as it leaves Herald: the guide's fields, dates as ISO strings, plus `seq`, the sync cursor position. */
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

/** How a client should present a live notification (the user's sound, desktop and quiet-hours settings). */
export interface Presentation {
  sound: boolean;
  volume: number;
  desktop: boolean;
  silent: boolean;
}

export type ServerMessage =
  | { type: "notification"; notification: NotificationDto; presentation: Presentation }
  | { type: "notification_updated"; id: string; read: boolean; archived: boolean; deleted: boolean }
  | { type: "unread_count"; count: number }
  /**
   * What this device missed, oldest first; `cursor` is where it resumes (send it back as `?cursor=` on
   * reconnect, or in `sync` for the next page); `truncated` means "reload through REST".
   */
  | { type: "sync"; notifications: NotificationDto[]; cursor: number; truncated?: boolean }
  | { type: "error"; code: string; message: string }
  | { type: "pong" };

export type ClientMessage =
  /** Delivered: one id, or `ids` (up to the sync page size) so a sync page is acked in one message. */
  | { type: "ack"; id: string }
  | { type: "ack"; ids: string[] }
  | { type: "read"; id: string }
  /** With a cursor: everything after it; without: what this device (`?device=` on connect) has not acknowledged. */
  | { type: "sync"; cursor?: number }
  | { type: "ping" };

/** Close codes Herald uses, with a reason the client can act on. */
export const CloseCodes = {
  goingAway: 1001,
  protocolError: 1002,
  /** A binary frame: the protocol is JSON text. */
  unsupportedData: 1003,
  /** Text that is not valid UTF-8 (closed by the ws library itself). */
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  tokenExpired: 4001,
  slowConsumer: 4008,
  /** The user opened more than maxConnectionsPerUser here: their oldest connection is closed. */
  tooManyConnections: 4009,
  rateLimited: 4029,
  /** An admin erased the user (DELETE /api/users/{id}): nothing is left to sync. Like HTTP 410. */
  userErased: 4410,
} as const;
