/**
 * What a Database leaves after stop.
 * - Database.listen's stop while its connection is being opened again after
 *   a loss: the new connection must be closed, not kept (a reopen in flight
 *   at stop stored its connection after stop and nobody closed it), and stop
 *   must not wait on a reopen whose LISTEN goes unanswered (a stalled path).
 *   A proxy in front of PostgreSQL cuts the first connection and holds or
 *   stalls the second.
 * - openWriter after close makes no pool that nobody would end.
 */
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/index.js";
import { usingPostgres } from "../support/database.js";
import { type PgProxy, pgProxy } from "../support/pg-proxy.js";

let proxy: PgProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** Resolves with `label` after `ms`: the losing side of a race that bounds a wait on an event. */
const after = (ms: number, label: string) => new Promise<string>((resolve) => setTimeout(resolve, ms, label));

describe.runIf(usingPostgres)("Database.listen stopped during a reopen", () => {
  it("closes the connection a reopen in flight opens after stop", async () => {
    proxy = await pgProxy(process.env.DATABASE_URL!);
    const database = await openDatabase({ url: proxy.url, onPoolError: () => undefined });
    try {
      const stop = await database.listen("herald_listen_stop_test", () => undefined);
      expect(proxy.accepted).toHaveLength(1);

      // Lose the LISTEN connection; the reopen (after RELISTEN_MS) is held at the proxy.
      const held = proxy.holdNext();
      const reopened = proxy.nextConnection();
      proxy.accepted[0]!.destroy();
      const heldClosed = once(await reopened, "close");

      // Stop while the reopen is in flight, then let it finish connecting.
      const stopped = stop();
      held.release();
      await stopped;
      // The reopened connection is closed by stop, not left open (waits at most 5 s, then fails).
      await expect(Promise.race([heldClosed.then(() => "closed"), after(5_000, "still open")])).resolves.toBe("closed");
    } finally {
      await database.close();
    }
  });

  it("returns, and closes that connection, when the reopen's LISTEN goes unanswered", async () => {
    proxy = await pgProxy(process.env.DATABASE_URL!);
    const errors: string[] = [];
    const database = await openDatabase({ url: proxy.url, onPoolError: (err) => errors.push(err.message) });
    try {
      const stop = await database.listen("herald_listen_stall_test", () => undefined);
      const stalled = proxy.stallNext();
      const reopened = proxy.nextConnection();
      proxy.accepted[0]!.destroy();
      const heldClosed = once(await reopened, "close");
      await stalled; // the reopen got through its startup and sent the LISTEN, which was swallowed
      await expect(Promise.race([stop().then(() => "stopped"), after(4_000, "stop still waiting after 4 s")])).resolves.toBe("stopped");
      await expect(Promise.race([heldClosed.then(() => "closed"), after(2_000, "still open")])).resolves.toBe("closed");
      // The only error reported is the first connection's loss, not the cut made by stop.
      expect(errors.filter((m) => m !== "Connection terminated unexpectedly")).toEqual([]);
    } finally {
      await database.close();
    }
  }, 15_000);
});

describe.runIf(usingPostgres)("Database.openWriter after close", () => {
  it("makes no pool (nothing would end it) and says so with undefined", async () => {
    const database = await openDatabase({ url: process.env.DATABASE_URL! });
    expect(database.openWriter?.({ connections: 1, settings: {} })).toBeDefined();
    await database.close();
    expect(database.openWriter?.({ connections: 1, settings: {} })).toBeUndefined();
  });
});
