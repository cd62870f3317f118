/**
 * websocket_sessions rows that no process will ever close: those of an
 * instance that crashed (kill -9, power loss). A survivor closes them when the
 * dead instance's presence expires (Redis), and a single instance closes
 * those of earlier runs when it starts (embedded database or no Redis: no
 * other process can be serving it). Code 1006 (abnormal closure), reason
 * `instance_lost`; disconnected_at is when the loss was noticed.
 */
import type { Queryable } from "../db/index.js";

export const INSTANCE_LOST = "instance_lost";

const CLOSE_OF_INSTANCE = `
UPDATE websocket_sessions
   SET disconnected_at = $2, disconnect_code = 1006, disconnect_reason = '${INSTANCE_LOST}'
 WHERE instance_id = $1 AND disconnected_at IS NULL`;

const CLOSE_ALL_BUT = `
UPDATE websocket_sessions
   SET disconnected_at = $2, disconnect_code = 1006, disconnect_reason = '${INSTANCE_LOST}'
 WHERE instance_id <> $1 AND disconnected_at IS NULL`;

/** Closes the open sessions of a lost instance; idempotent (several survivors may run it). */
export async function closeSessionsOfInstance(db: Queryable, instanceId: string, at: Date): Promise<void> {
  await db.query(CLOSE_OF_INSTANCE, [instanceId, at.toISOString()]);
}

/** Closes every open session not of `instanceId`: only for a process that is the database's sole server. */
export async function closeSessionsOfEarlierRuns(db: Queryable, instanceId: string, at: Date): Promise<void> {
  await db.query(CLOSE_ALL_BUT, [instanceId, at.toISOString()]);
}
