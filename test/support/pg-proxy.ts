/**
 * A TCP proxy in front of PostgreSQL for tests that break one connection's
 * path: the next connection can be held before anything reaches PostgreSQL
 * (released later), or stalled after its startup (its later bytes
 * swallowed, as on a dead network path).
 */
import { once } from "node:events";
import net from "node:net";

export interface PgProxy {
  /** The DATABASE_URL with its host replaced by the proxy's. */
  url: string;
  /** Client sockets in the order accepted. */
  accepted: net.Socket[];
  /** Resolves with the next connection's client socket once accepted. */
  nextConnection(): Promise<net.Socket>;
  /** The next connection waits, forwarding nothing, until the returned `release()`. */
  holdNext(): { release: () => void };
  /** The next connection's bytes after its startup are swallowed; resolves when the first one is. */
  stallNext(): Promise<void>;
  close(): Promise<void>;
}

/** ReadyForQuery ('Z', length 5): PostgreSQL finished the startup (or a query). */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);

export async function pgProxy(databaseUrl: string): Promise<PgProxy> {
  const target = new URL(databaseUrl);
  const accepted: net.Socket[] = [];
  const waiting: ((socket: net.Socket) => void)[] = [];
  let hold: Promise<void> | undefined;
  let stall: (() => void) | undefined;
  const server = net.createServer((client) => {
    accepted.push(client);
    const held = hold;
    const stalled = stall;
    hold = stall = undefined;
    client.pause();
    void (held ?? Promise.resolve()).then(() => {
      if (client.destroyed) return;
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      let ready = false;
      const cut = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("data", (chunk: Buffer) => {
        if (stalled && ready) return stalled(); // swallowed: PostgreSQL never sees it
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (chunk.includes(READY_FOR_QUERY)) ready = true;
        client.write(chunk);
      });
      client.on("error", cut).on("close", cut);
      upstream.on("error", cut).on("close", cut);
      client.resume();
    });
    waiting.shift()?.(client);
  });
  const url = await listen(server, target);
  return {
    url: url.toString(),
    accepted,
    nextConnection: () => new Promise<net.Socket>((resolve) => waiting.push(resolve)),
    holdNext() {
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      return { release };
    },
    stallNext: () =>
      new Promise<void>((resolve) => {
        stall = resolve;
      }),
    async close() {
      for (const socket of accepted) socket.destroy();
      server.close();
      await once(server, "close");
    },
  };
}

export interface DropAfterCommitProxy {
  /** The DATABASE_URL with its host replaced by the proxy's. */
  url: string;
  /** From now on, the first connection that sends `marker` is cut at its next ReadyForQuery. */
  arm(): void;
  /** Connections cut so far. */
  dropped(): number;
  close(): Promise<void>;
}

/**
 * A proxy that, once armed, cuts the first connection whose client sent
 * `marker` (a statement's text in its Parse, or a prepared statement's name in
 * its Bind) at PostgreSQL's next ReadyForQuery: the statement has committed,
 * and the client never learns it.
 */
export async function dropAfterCommitProxy(databaseUrl: string, marker: string): Promise<DropAfterCommitProxy> {
  const target = new URL(databaseUrl);
  let armed = false;
  let drops = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let markerSent = false;
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (armed && chunk.includes(marker)) markerSent = true;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (armed && markerSent && chunk.includes(READY_FOR_QUERY)) {
        armed = false;
        drops++;
        cut();
        return;
      }
      client.write(chunk);
    });
    client.on("error", cut).on("close", cut);
    upstream.on("error", cut).on("close", cut);
  });
  const url = await listen(server, target);
  return {
    url: url.toString(),
    arm: () => {
      armed = true;
    },
    dropped: () => drops,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Listens on a free loopback port; returns `target` with its host replaced by the proxy's. */
async function listen(server: net.Server, target: URL): Promise<URL> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = new URL(target);
  url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return url;
}
