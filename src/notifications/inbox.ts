/**
 * A user's inbox: list, count, read, archive, delete. Every statement is
 * scoped by user id, so another user's notification id matches nothing (the
 * HTTP layer answers 404). After a change, the user's other devices hear
 * about it (`notification_updated`, `unread_count`) and the analytics sink
 * records `opened` / `archived` / `deleted`.
 */
import type { NotificationRow } from "../db/index.js";
import type { ServerMessage } from "../protocol/index.js";
import type { RealtimePublisher } from "./publisher.js";
import type { NotificationDeps } from "./deps.js";
import { COUNT_NOTIFICATIONS, DELETE_OWN, LIST_NOTIFICATIONS, MARK_ALL_READ, SELECT_OWN, UNREAD_COUNT, UPDATE_STATE } from "./sql.js";
import { type NotificationDto, toNotificationDto } from "./types.js";

export interface GetNotificationsOptions {
  limit?: number;
  offset?: number;
  read?: boolean;
  archived?: boolean;
  type?: string;
}

export interface NotificationPage {
  notifications: NotificationDto[];
  total: number;
}

export const MAX_PAGE = 100;

export interface StateChange {
  read?: boolean;
  archived?: boolean;
}

/** At most this many `notification_updated` messages after a read-all; the count follows anyway. */
const READ_ALL_PUSH_LIMIT = 500;

export class Inbox {
  constructor(
    private readonly deps: NotificationDeps,
    private readonly realtime: RealtimePublisher,
  ) {}

  async list(userId: string, options: GetNotificationsOptions = {}): Promise<NotificationPage> {
    const { database } = this.deps;
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? 20), 1), MAX_PAGE);
    const offset = Math.max(Math.trunc(options.offset ?? 0), 0);
    const filters = [userId, options.read ?? null, options.archived ?? null, options.type ?? null];
    const [rows, counts] = await Promise.all([
      database.query<NotificationRow>(LIST_NOTIFICATIONS, [...filters, limit, offset]),
      database.query<{ total: number }>(COUNT_NOTIFICATIONS, filters),
    ]);
    return { notifications: rows.map(toNotificationDto), total: Number(counts[0]?.total ?? 0) };
  }

  async get(userId: string, id: string): Promise<NotificationDto | null> {
    const { database } = this.deps;
    const rows = await database.query<NotificationRow>(SELECT_OWN, [id, userId]);
    return rows[0] ? toNotificationDto(rows[0]) : null;
  }

  async unreadCount(userId: string): Promise<number> {
    const { database } = this.deps;
    return Number((await database.query<{ count: number }>(UNREAD_COUNT, [userId]))[0]?.count ?? 0);
  }

  /**
   * Applies `change` to one of the user's notifications. Returns the new state,
   * or null when the id is not one of the user's (nothing changed).
   */
  async update(userId: string, id: string, change: StateChange): Promise<{ read: boolean; archived: boolean } | null> {
    const { database, analytics } = this.deps;
    const rows = await database.query<{ wasRead: boolean; wasArchived: boolean; read: boolean; archived: boolean }>(UPDATE_STATE, [
      id,
      userId,
      change.read ?? null,
      change.archived ?? null,
    ]);
    const r = rows[0];
    if (!r) return null;
    if (r.read && !r.wasRead) analytics.record({ notificationId: id, userId, eventType: "opened" });
    if (r.archived && !r.wasArchived) analytics.record({ notificationId: id, userId, eventType: "archived" });
    if (r.read !== r.wasRead || r.archived !== r.wasArchived) {
      await this.tell(userId, [{ type: "notification_updated", id, read: r.read, archived: r.archived, deleted: false }]);
    }
    return { read: r.read, archived: r.archived };
  }

  /** Marks every unread notification of the user read; returns how many changed. */
  async markAllRead(userId: string): Promise<number> {
    const { database, analytics } = this.deps;
    const rows = await database.query<{ id: string; archived: boolean }>(MARK_ALL_READ, [userId]);
    for (const r of rows) analytics.record({ notificationId: r.id, userId, eventType: "opened" });
    if (rows.length > 0) {
      await this.tell(
        userId,
        rows.slice(0, READ_ALL_PUSH_LIMIT).map((r) => ({ type: "notification_updated", id: r.id, read: true, archived: r.archived, deleted: false })),
      );
    }
    return rows.length;
  }

  /** Deletes one of the user's notifications; false when it is not theirs. */
  async delete(userId: string, id: string): Promise<boolean> {
    const { database, analytics } = this.deps;
    const [gone] = await database.query<{ read: boolean; archived: boolean }>(DELETE_OWN, [id, userId]);
    if (!gone) return false;
    analytics.record({ notificationId: id, userId, eventType: "deleted" });
    await this.tell(userId, [{ type: "notification_updated", id, read: gone.read, archived: gone.archived, deleted: true }]);
    return true;
  }

  /** Sends the changes and the fresh unread count to every live connection of the user. */
  private async tell(userId: string, messages: ServerMessage[]): Promise<void> {
    const { logger } = this.deps;
    try {
      for (const m of messages) await this.realtime.publishToUser(userId, m);
      await this.realtime.publishToUser(userId, { type: "unread_count", count: await this.unreadCount(userId) });
    } catch (err) {
      // The change is committed; a live update that fails is repaired by the next sync.
      logger.warn({ err, userId }, "could not publish an inbox update");
    }
  }
}
