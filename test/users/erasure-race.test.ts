/**
 * An erasure beside a writer that chose its recipients from the user
 * directory (src/users/directory-lock.ts): a broadcast, or a digest claim,
 * that read the directory while the user was in it and commits after the
 * erasure must not leave rows of the erased user behind. PostgreSQL only
 * (PGlite runs one statement at a time: the two never interleave there).
 *
 * The window is held open without sleeps: a test transaction locks another
 * recipient's row (its inbox state, or a digest row the claim conflicts
 * with), so the writer has written the erased user's row and waits before
 * its statement ends; the erasure is sent meanwhile; then the test
 * transaction ends and both finish.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimDueDigests } from "../../src/digests/claim.js";
import type { Connection } from "../../src/db/index.js";
import { api } from "../notifications/api.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { blockedBy, hold, rowsOfUser, settledOrWaitingOn } from "../support/pg-locks.js";

let h: TestHerald;

beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

/**
 * Runs `writer` until it waits on `lockOther` (a test transaction's lock on another recipient's row), sends
 * the erasure of `erased`, ends the test transaction, and returns the erasure's status once both finished.
 */
async function eraseBeside(erased: string, lockOther: (c: Connection) => Promise<void>, writer: () => Promise<unknown>): Promise<number> {
  const blocker = await hold(h.database);
  try {
    await blocker.c.query("BEGIN");
    await lockOther(blocker.c);
    const written = writer();
    const writerPid = await blockedBy(h.database, blocker.c);
    const erasure = api(h)("DELETE", `/api/users/${erased}`, { token: h.adminToken });
    // Either order is fine to the test; what may not happen is an erasure answered while the writer is still
    // to commit rows of the erased user.
    await settledOrWaitingOn(h.database, erasure, writerPid);
    await blocker.c.query("ROLLBACK");
    await written;
    return (await erasure).status;
  } finally {
    await blocker.c.query("ROLLBACK").catch(() => {});
    blocker.release();
    await blocker.done;
  }
}

describe.runIf(usingPostgres)("an erasure beside a writer that read the directory (PostgreSQL)", () => {
  it("a broadcast that read the directory before the erasure and commits after it leaves no row of the erased user", async () => {
    const erased = `race-a-${randomUUID()}`;
    const other = `race-b-${randomUUID()}`;
    for (const id of [erased, other]) await h.herald.users.upsert({ id, email: `${id}@example.test` });
    // The other user's inbox state row exists (the broadcast's statement trigger locks it, after the erased user's).
    await h.herald.notifications.createAndSendNotification({ userId: other, type: "new_message", title: "first", message: "m" });
    const status = await eraseBeside(
      erased,
      (c) => c.query("SELECT 1 FROM inbox_state WHERE user_id = $1 FOR UPDATE", [other]).then(() => undefined),
      () => h.herald.notifications.createAndBroadcastNotification({ type: "platform_update", title: "Maintenance", message: "tonight" }),
    );
    expect(status).toBe(204);
    expect(await rowsOfUser(h.database, erased)).toEqual({});
    // The broadcast itself went through for everyone else.
    const [row] = await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND broadcast_id IS NOT NULL", [other]);
    expect(row!.n).toBe(1);
  });

  it("a digest claim that read the directory before the erasure and commits after it leaves no digest (nor address) of the erased user", async () => {
    const erased = `race-a-${randomUUID()}`;
    const other = `race-b-${randomUUID()}`;
    const scheduledFor = new Date(Date.now() + 60_000);
    const windowStart = new Date(scheduledFor.getTime() - 86_400_000);
    for (const id of [erased, other]) {
      await h.herald.users.upsert({ id, email: `${id}@example.test` });
      // Unread and never e-mailed: each is due a daily digest in the window.
      await h.database.query("INSERT INTO notifications (user_id, type, priority, title, message) VALUES ($1, 'new_message', 'normal', 't', 'm')", [id]);
    }
    const status = await eraseBeside(
      erased,
      // The claim inserts in user id order: the erased user's row first, then it waits on this uncommitted one.
      (c) =>
        c
          .query("INSERT INTO email_digests (user_id, frequency, status, scheduled_for, email_address) VALUES ($1, 'daily', 'pending', $2, 'x@example.test')", [
            other,
            scheduledFor,
          ])
          .then(() => undefined),
      () => claimDueDigests(h.database, [{ timezone: "UTC", frequency: "daily", windowStart, scheduledFor }], new Date()),
    );
    expect(status).toBe(204);
    expect(await rowsOfUser(h.database, erased)).toEqual({});
    const [row] = await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM email_digests WHERE user_id = $1", [other]);
    expect(row!.n).toBe(1);
  });
});
