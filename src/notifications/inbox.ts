/**
 * A user's inbox: list, count, read, archive, delete. Every statement is
 * scoped by user id, so another user's notification id matches nothing (the
 * HTTP layer answers 404). After a change, the user's other devices hear
 * about it (`notification_updated`, `unread_count`) and the analytics sink
 * records `opened` / `archived` / `deleted`.
 *
 * Sized for inboxes of millions (issue 18, migration 0012): counts are read
 * from inbox_state, which triggers keep exact in every writer's transaction;
 * pages go by keyset (`before` a seq) as well as by offset; mark all read
 * moves the user's read watermark instead of updating every row, and records
 * no `opened` events (a bulk dismissal is not an open; the README says so);
 * archive all likewise moves the archive watermark (migration 0017) and
 * records no `archived` events.
 */
import type { NotificationRow } from "../db/index.js";
import type { ServerMessage } from "../protocol/index.js";
import type { RealtimePublisher } from "./publisher.js";
import type { NotificationDeps } from "./deps.js";
import {
  CLEAR_MARKED_UNARCHIVED,
  CLEAR_MARKED_UNREAD,
  DELETE_OWN,
  INBOX_COUNTS,
  type InboxFilter,
  LOCK_INBOX_STATE,
  MOVE_ARCHIVE_WATERMARK,
  MOVE_WATERMARK,
  NEWLY_ARCHIVED,
  NEWLY_READ,
  SELECT_OWN,
  UNREAD_COUNT,
  UPDATE_STATE,
  type Watermarks,
  cappedCountStatement,
  listStatement,
} from "./sql.js";
import { type NotificationDto, toNotificationDto } from "./types.js";

export interface GetNotificationsOptions {
  limit?: number;
  offset?: number;
  read?: boolean;
  archived?: boolean;
  type?: string;
  /** Keyset cursor: the notifications older than this seq (a page's `next`). */
  before?: number;
}

export interface NotificationPage {
  notifications: NotificationDto[];
  /** Exact without a `type` filter (maintained counts); with one, counted up to TOTAL_CAP (`totalCapped`). */
  total: number;
  /** True when `total` stopped at TOTAL_CAP: there are at least that many. */
  totalCapped?: boolean;
  /** The `before` of the next page, or null when this page is the last. */
  next: number | null;
}

export const MAX_PAGE = 100;

/** A type-filtered total counts no further (each counted row is an index entry and a heap visit). */
export const TOTAL_CAP = 1000;

interface InboxCounts {
  readThroughSeq: number | string;
  archivedThroughSeq: number | string;
  inApp: number;
  archived: number;
  unread: number;
  archivedUnread: number;
}

export interface StateChange {
  read?: boolean;
  archived?: boolean;
}

/** Reads of a list page raced by bulk changes before the page answers without the rows they changed. */
const LIST_ATTEMPTS = 3;

/** True when a row's state is not what the filter asked for (see Inbox.list). */
function contradicts(n: NotificationDto, filter: InboxFilter): boolean {
  return (filter.read !== undefined && n.read !== filter.read) || (filter.archived !== undefined && n.archived !== filter.archived);
}

/** At most this many `notification_updated` messages after a read-all or an archive-all; the count follows anyway. */
const BULK_PUSH_LIMIT = 500;

export class Inbox {
  constructor(
    private readonly deps: NotificationDeps,
    private readonly realtime: RealtimePublisher,
  ) {}

  async list(userId: string, options: GetNotificationsOptions = {}): Promise<NotificationPage> {
    const { database } = this.deps;
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? 20), 1), MAX_PAGE);
    const offset = Math.max(Math.trunc(options.offset ?? 0), 0);
    const filter: InboxFilter = { read: options.read, archived: options.archived, type: options.type };
    const before = options.before === undefined ? undefined : Math.trunc(options.before);
    for (let attempt = 1; ; attempt++) {
      const counts = database.query<InboxCounts>(INBOX_COUNTS, [userId]).then((rows) => rows[0]);
      // A read or archived filter needs the watermarks: read first, so the plan sees their values (beside the page otherwise).
      const watermarks = filter.read === undefined && filter.archived === undefined ? undefined : watermarksOf(await counts);
      const [rows, total] = await Promise.all([
        // One row more than the page tells whether a next page exists.
        database.query<NotificationRow>(...listStatement(userId, { ...filter, before }, limit + 1, offset, watermarks)),
        this.total(userId, filter, counts, watermarks),
      ]);
      const page = rows.slice(0, limit).map(toNotificationDto);
      // The watermarks and the page are two statements: a read-all or archive-all that committed between them
      // gives rows whose (new) state contradicts the filter the page was chosen by (the old watermark). Read again.
      if (page.some((n) => contradicts(n, filter)) && attempt < LIST_ATTEMPTS) continue;
      const shown = page.filter((n) => !contradicts(n, filter));
      const next = rows.length > limit ? page[page.length - 1]!.seq : null;
      return { notifications: shown, ...total, next };
    }
  }

  /** The list's total from the maintained counts, or counted up to TOTAL_CAP with a type filter. */
  private async total(
    userId: string,
    filter: InboxFilter,
    counts: Promise<InboxCounts | undefined>,
    watermarks: Watermarks | undefined,
  ): Promise<{ total: number; totalCapped?: boolean }> {
    if (filter.type !== undefined) {
      const [row] = await this.deps.database.query<{ total: number }>(...cappedCountStatement(userId, filter, TOTAL_CAP, watermarks));
      const counted = Number(row?.total ?? 0);
      return counted > TOTAL_CAP ? { total: TOTAL_CAP, totalCapped: true } : { total: counted };
    }
    const c = await counts;
    return { total: c ? totalOf(c, filter) : 0 };
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

  /**
   * Marks every notification of the user read; returns how many changed.
   * Constant time, see bulkChange.
   */
  markAllRead(userId: string): Promise<number> {
    return this.bulkChange(userId, READ_ALL);
  }

  /**
   * Archives every notification of the user; returns how many changed.
   * Constant time, see bulkChange. Records no `archived` events (a bulk tidy-up
   * is not a decision about each notification; the README says so), as a
   * read-all records no `opened`.
   */
  archiveAll(userId: string): Promise<number> {
    return this.bulkChange(userId, ARCHIVE_ALL);
  }

  /**
   * A read-all or archive-all, in one transaction: the few rows marked as
   * exceptions below the watermark (marked unread, marked unarchived) are
   * changed, the user's inbox_state row is locked (creations that counted
   * themselves have committed), and the watermark moves to the user's newest
   * seq. Cost: a few index probes, whatever the inbox size. After the commit
   * the devices hear about the newest BULK_PUSH_LIMIT, and the count.
   */
  private async bulkChange(userId: string, change: BulkChange): Promise<number> {
    const { cleared, moved } = await this.deps.database.transaction(async (tx) => {
      const cleared = await tx.query<BulkRow & { inApp: boolean }>(change.clear, [userId]);
      await tx.query(LOCK_INBOX_STATE, [userId]);
      const [moved] = await tx.query<MovedWatermark>(change.move, [userId]);
      return { cleared: cleared.filter((r) => r.inApp), moved: moved! };
    });
    const changed = cleared.length + Number(moved.changed);
    // Committed: the answer does not wait for the devices (up to BULK_PUSH_LIMIT messages); tell() logs a failure.
    if (changed > 0) void this.tellBulkChange(userId, change, cleared, moved);
    return changed;
  }

  private async tellBulkChange(userId: string, change: BulkChange, cleared: BulkRow[], moved: MovedWatermark): Promise<void> {
    try {
      const newly = await this.deps.database.query<BulkRow>(change.newly, change.newlyParams(userId, moved));
      await this.tell(
        userId,
        [...cleared, ...newly]
          .slice(0, BULK_PUSH_LIMIT)
          .map((r) => ({ type: "notification_updated", id: r.id, ...change.stateOf(r), deleted: false })),
      );
    } catch (err) {
      this.deps.logger.warn({ err, userId }, `could not tell the devices about ${change.what}`);
    }
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

/** What moving a watermark answers: where it was, where it is, and how many rows the move changed. */
interface MovedWatermark {
  fromSeq: string | number;
  throughSeq: string | number;
  changed: string | number;
  /** MOVE_WATERMARK only: rows above it are not archived, what NEWLY_READ needs. */
  archivedThroughSeq?: string | number;
}

/** A row a bulk change changed, with the state its statements return (the other is implied by the change). */
interface BulkRow {
  id: string;
  read?: boolean;
  archived?: boolean;
}

/** A read-all or an archive-all, statement by statement (Inbox.bulkChange). */
interface BulkChange {
  /** For the log, when the devices could not be told. */
  what: string;
  /** Changes the few rows marked as exceptions below the watermark. */
  clear: string;
  /** After LOCK_INBOX_STATE: moves the watermark to the user's newest seq. */
  move: string;
  /** The newest rows the move changed (for the devices), with its parameters. */
  newly: string;
  newlyParams: (userId: string, moved: MovedWatermark) => unknown[];
  /** The state a changed row has now. */
  stateOf: (row: BulkRow) => { read: boolean; archived: boolean };
}

const READ_ALL: BulkChange = {
  what: "a read-all",
  clear: CLEAR_MARKED_UNREAD,
  move: MOVE_WATERMARK,
  newly: NEWLY_READ,
  newlyParams: (userId, m) => [userId, m.fromSeq, m.throughSeq, BULK_PUSH_LIMIT, m.archivedThroughSeq],
  // NEWLY_READ lists rows that are not archived; CLEAR_MARKED_UNREAD returns each row's archived state.
  stateOf: (r) => ({ read: true, archived: r.archived ?? false }),
};

const ARCHIVE_ALL: BulkChange = {
  what: "an archive-all",
  clear: CLEAR_MARKED_UNARCHIVED,
  move: MOVE_ARCHIVE_WATERMARK,
  newly: NEWLY_ARCHIVED,
  newlyParams: (userId, m) => [userId, m.fromSeq, m.throughSeq, BULK_PUSH_LIMIT],
  stateOf: (r) => ({ read: r.read ?? false, archived: true }),
};

function watermarksOf(c: InboxCounts | undefined): Watermarks {
  return { read: Number(c?.readThroughSeq ?? 0), archived: Number(c?.archivedThroughSeq ?? 0) };
}

/** The total of a filter without `type`, from the maintained counts. */
function totalOf(c: InboxCounts, filter: InboxFilter): number {
  const [all, archived, unread, archivedUnread] = [c.inApp, c.archived, c.unread, c.archivedUnread].map(Number) as [number, number, number, number];
  const [inFilter, unreadInFilter] =
    filter.archived === undefined ? [all, unread + archivedUnread] : filter.archived ? [archived, archivedUnread] : [all - archived, unread];
  if (filter.read === undefined) return inFilter;
  return filter.read ? inFilter - unreadInFilter : unreadInFilter;
}
