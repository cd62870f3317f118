/**
 * An erasure beside a test digest (EmailDigestService.sendTestDigest): it
 * reads the user's address from the directory and then writes a digest row
 * carrying it, in two statements. One that read the entry while an erasure
 * was under way and wrote after the erasure's DELETEs would leave the erased
 * user's address behind (src/users/directory-lock.ts). PostgreSQL only
 * (PGlite runs one transaction at a time: the two never interleave there).
 *
 * The window is held open without sleeps: a test transaction locks the
 * erased user's directory row, which the erasure deletes last, so the
 * erasure has run its other DELETEs and waits uncommitted; the test digest
 * is sent meanwhile; then the test transaction ends and both finish.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../notifications/api.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { blockedBy, hold, rowsOfUser, settledOrWaitingOn } from "../support/pg-locks.js";

let h: TestHerald;

beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

describe.runIf(usingPostgres)("an erasure beside a test digest (PostgreSQL)", () => {
  it("a test digest that read the address while the erasure ran leaves no digest (nor address) of the erased user", async () => {
    const erased = `race-t-${randomUUID()}`;
    const address = `${erased}@example.test`;
    await h.herald.users.upsert({ id: erased, email: address });
    const blocker = await hold(h.database);
    try {
      await blocker.c.query("BEGIN");
      // The erasure deletes the directory entry last: it waits here with every other DELETE done, uncommitted.
      await blocker.c.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [erased]);
      const erasure = api(h)("DELETE", `/api/users/${erased}`, { token: h.adminToken });
      const erasurePid = await blockedBy(h.database, blocker.c);
      const digest = h.herald.digests.sendTestDigest(erased);
      // It waits for the erasure (and then finds no user); without the lock it finishes now and writes its row
      // after the erasure's DELETE of email_digests.
      await settledOrWaitingOn(h.database, digest, erasurePid);
      await blocker.c.query("ROLLBACK");
      expect((await erasure).status).toBe(204);
      // It waited for the erasure: the directory it then read no longer holds the user.
      await expect(digest).rejects.toMatchObject({ code: "HERALD_NOT_FOUND" });
      expect(await rowsOfUser(h.database, erased)).toEqual({});
      const [row] = await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM email_digests WHERE email_address = $1", [address]);
      expect(row!.n).toBe(0);
    } finally {
      await blocker.c.query("ROLLBACK").catch(() => {});
      blocker.release();
      await blocker.done;
    }
  });
});
