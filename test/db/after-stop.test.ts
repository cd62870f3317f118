/**
 * What a Database leaves after stop. Database.listen's stop while its connection is being opened again after a
 * loss: the new connection must be closed, not kept (before, a reopen in
 * flight at stop stored its connection after stop and nobody closed it).
 * A proxy in front of PostgreSQL cuts the first connection and holds the
 * second one's opening until stop has been called. And openWriter after
 * close makes no pool that nobody would end.
 */
import { once } from "node:events";
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/index.js";
import { usingPostgres } from "../support/database.js";

const servers: net.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** Forwards to PostgreSQL; `hold()` makes the next connection wait until `release()`. */
async function gatedProxy(target: URL) {
  const accepted: net.Socket[] = [];
  const waiting: ((socket: net.Socket) => void)[] = [];
  let holding = false;
  let held: { client: net.Socket; release: () => void } | undefined;
  const pipe = (client: net.Socket) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.pipe(upstream).on("error", cut);
    upstream.pipe(client).on("error", cut);
    client.on("close", cut);
    upstream.on("close", cut);
  };
  const server = net.createServer((client) => {
    client.pause();
    accepted.push(client);
    if (holding) {
      holding = false;
      held = { client, release: () => pipe(client.resume()) };
    } else pipe(client.resume());
    waiting.shift()?.(client);
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    hold: () => {
      holding = true;
    },
    held: () => held,
    nextConnection: () => new Promise<net.Socket>((resolve) => waiting.push(resolve)),
  };
}

describe.runIf(usingPostgres)("Database.listen stopped during a reopen", () => {
  it("closes the connection a reopen in flight opens after stop", async () => {
    const target = new URL(process.env.DATABASE_URL!);
    const proxy = await gatedProxy(target);
    const url = new URL(target);
    url.host = `127.0.0.1:${proxy.port}`;
    const database = await openDatabase({ url: url.toString(), onPoolError: () => undefined });
    try {
      const stop = await database.listen("herald_listen_stop_test", () => undefined);
      expect(proxy.accepted).toHaveLength(1);

      // Lose the LISTEN connection; the reopen (after RELISTEN_MS) is held at the proxy.
      proxy.hold();
      const reopened = proxy.nextConnection();
      proxy.accepted[0]!.destroy();
      await reopened;
      const held = proxy.held()!;
      const heldClosed = once(held.client, "close");

      // Stop while the reopen is in flight, then let it finish connecting.
      const stopped = stop();
      held.release();
      await stopped;
      // The reopened connection is closed by stop, not left open (waits at most 5 s, then fails).
      await expect(Promise.race([heldClosed.then(() => "closed"), new Promise((r) => setTimeout(r, 5_000, "still open"))])).resolves.toBe("closed");
    } finally {
      await database.close();
    }
  });
});

describe.runIf(usingPostgres)("Database.openWriter after close", () => {
  it("makes no pool (nothing would end it) and says so with undefined", async () => {
    const database = await openDatabase({ url: process.env.DATABASE_URL! });
    expect(database.openWriter?.({ connections: 1, settings: {} })).toBeDefined();
    await database.close();
    expect(database.openWriter?.({ connections: 1, settings: {} })).toBeUndefined();
  });
});
