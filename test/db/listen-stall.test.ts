/**
 * Database.listen's stop while a reopen's LISTEN goes unanswered (02687b1 made
 * stop wait for the reopen in flight): the proxy lets the reopened connection
 * start up, then forwards nothing more to PostgreSQL (a stalled network path),
 * so the LISTEN never returns. stop() must not wait on it.
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

/** Forwards to PostgreSQL; after `stallNext()`, the next connection's queries after its startup are swallowed. */
async function stallingProxy(target: URL) {
  const accepted: net.Socket[] = [];
  const waiting: ((socket: net.Socket) => void)[] = [];
  let stallNext = false;
  const server = net.createServer((client) => {
    accepted.push(client);
    const stall = stallNext;
    stallNext = false;
    let ready = false;
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (stall && ready) return; // swallowed: PostgreSQL never sees the LISTEN
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      // ReadyForQuery ('Z', length 5): the startup is done.
      if (chunk.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) ready = true;
      client.write(chunk);
    });
    client.on("error", cut).on("close", cut);
    upstream.on("error", cut).on("close", cut);
    waiting.shift()?.(client);
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    stallNext: () => {
      stallNext = true;
    },
    nextConnection: () => new Promise<net.Socket>((resolve) => waiting.push(resolve)),
  };
}

describe.runIf(usingPostgres)("Database.listen stopped while a reopen's LISTEN is unanswered", () => {
  it("stop returns and closes that connection", async () => {
    const target = new URL(process.env.DATABASE_URL!);
    const proxy = await stallingProxy(target);
    const url = new URL(target);
    url.host = `127.0.0.1:${proxy.port}`;
    const errors: string[] = [];
    const database = await openDatabase({ url: url.toString(), onPoolError: (err) => errors.push(err.message) });
    try {
      const stop = await database.listen("herald_listen_stall_test", () => undefined);
      proxy.stallNext();
      const reopened = proxy.nextConnection();
      proxy.accepted[0]!.destroy();
      const held = await reopened;
      const heldClosed = once(held, "close");
      // Let the reopen get through its startup and send the LISTEN that is swallowed.
      await new Promise((r) => setTimeout(r, 300));
      const outcome = await Promise.race([stop().then(() => "stopped"), new Promise((r) => setTimeout(r, 4_000, "stop still waiting after 4 s"))]);
      expect(outcome).toBe("stopped");
      await expect(Promise.race([heldClosed.then(() => "closed"), new Promise((r) => setTimeout(r, 2_000, "still open"))])).resolves.toBe("closed");
      // The only error reported is the first connection's loss, not the cut made by stop.
      expect(errors.filter((m) => m !== "Connection terminated unexpectedly")).toEqual([]);
    } finally {
      await database.close();
    }
  }, 15_000);
});
