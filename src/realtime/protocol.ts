/**
 * The WebSocket protocol of SPEC.md section 5, as types shared by the server,
 * the client SDK and the notification service.
 */
import type { NotificationDto } from "../notifications/types.js";

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
  policyViolation: 1008,
  messageTooBig: 1009,
  tokenExpired: 4001,
  slowConsumer: 4008,
  /** The user opened more than maxConnectionsPerUser here: their oldest connection is closed. */
  tooManyConnections: 4009,
  rateLimited: 4029,
} as const;

/**
 * What the WebSocket server asks of the notification domain when a client
 * sends `read`: the NotificationService registers itself through
 * `NotificationWebSocketServer.useInbox()`, so a read on a socket and a read
 * through REST take the same path (update, `opened` event, `notification_updated`
 * and `unread_count` to the user's other connections).
 */
export interface InboxActions {
  /** Marks one of the user's notifications read; false when it is not the user's. */
  markRead(userId: string, notificationId: string): Promise<boolean>;
}

/** One recipient of a broadcast: its own row id and cursor position. */
export interface BroadcastRecipient {
  userId: string;
  id: string;
  seq: number;
  presentation: Presentation;
}

/** The part of a broadcast notification that is the same for every recipient. */
export type BroadcastBase = Omit<NotificationDto, "id" | "seq" | "userId">;
