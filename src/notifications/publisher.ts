/**
 * What the notification domain asks of a live-delivery transport. The
 * WebSocket server (src/realtime) implements it; the notification service
 * only knows this interface, so the dependency runs one way: realtime ->
 * notifications.
 */
import type { NotificationDto, Presentation, ServerMessage } from "../protocol/index.js";

/**
 * What the transport calls back when a client sends `read`: the
 * NotificationService registers itself through `useInbox()`, so a read on a
 * socket and a read through REST take the same path (update, `opened` event,
 * `notification_updated` and `unread_count` to the user's other connections).
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

export interface RealtimePublisher {
  useInbox(inbox: InboxActions): void;
  publishNotification(notification: NotificationDto, presentation: Presentation): Promise<void>;
  publishBroadcast(base: BroadcastBase, recipients: BroadcastRecipient[]): Promise<void>;
  publishToUser(userId: string, message: ServerMessage): Promise<void>;
}
