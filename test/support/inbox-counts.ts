/**
 * The inbox counts migration 0012 maintains (inbox_state) beside COUNT(*)
 * over the rows as both watermarks make them: the check every inbox test
 * repeats after its steps.
 */
import type { Queryable } from "../../src/db/index.js";

export interface CountsAndRows {
  userId: string;
  /** in_app, archived, unread, archived unread: as maintained. */
  counts: number[];
  /** The same four, counted over the rows. */
  rows: number[];
}

/** Each user's maintained counts and counted rows; every user with an inbox_state row when `users` is not given. */
export async function countsAndRows(database: Queryable, users?: string[]): Promise<CountsAndRows[]> {
  const rows = await database.query<Record<string, number | string>>(
    `SELECT s.user_id, s.in_app_count, s.archived_count, s.unread_count, s.archived_unread_count,
            count(n.id) FILTER (WHERE n.in_app) AS in_app_rows,
            count(n.id) FILTER (WHERE n.in_app AND notification_is_archived(n)) AS archived_rows,
            count(n.id) FILTER (WHERE n.in_app AND NOT notification_is_archived(n) AND NOT notification_is_read(n)) AS unread_rows,
            count(n.id) FILTER (WHERE n.in_app AND notification_is_archived(n) AND NOT notification_is_read(n)) AS archived_unread_rows
       FROM inbox_state s LEFT JOIN notifications n ON n.user_id = s.user_id
      WHERE $1::text[] IS NULL OR s.user_id = ANY($1::text[])
      GROUP BY s.user_id ORDER BY s.user_id`,
    [users ?? null],
  );
  return rows.map((r) => ({
    userId: String(r.user_id),
    counts: [r.in_app_count, r.archived_count, r.unread_count, r.archived_unread_count].map(Number),
    rows: [r.in_app_rows, r.archived_rows, r.unread_rows, r.archived_unread_rows].map(Number),
  }));
}
