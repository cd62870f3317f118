/**
 * Attack on ee470b2 (a one-key write's invalidation is published right behind
 * the write on the bus's publishing connection, sharedWritesOrderedWithBus).
 * The DEL and the PUBLISH then go out as one ioredis auto-pipeline, the
 * PUBLISH at pipeline index 1. When that connection closes after the DEL's
 * answer but before the PUBLISH's, ioredis aborts the rest of a pipeline
 * that was partly answered (abortIncompletePipelines) instead of resending
 * it: the invalidation of a delete Redis applied is lost, and as only the
 * writer's publishing connection dropped (the other instances' subscriptions
 * did not), nobody drops its copies: they are served for NEAR_CACHE_TTL_MS.
 * Before, the PUBLISH was issued after the DEL's answer, alone at index 0 of
 * its pipeline, and ioredis resent it after the reconnect. Fixed in b20bb1b:
 * a publish sent with its write that fails is sent again after the answer.
 *
 * A TCP proxy in front of A's connections stands for the network: it lets
 * the DEL through, hands back its answer, then closes the connection with
 * whatever came behind the DEL unsent.
 */
import { randomUUID } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { RedisBus } from "../../src/bus/index.js";
import { NearCache, RedisCache } from "../../src/cache/index.js";
import { watchInvalidation } from "./invalidations.js";

const url = process.env.REDIS_URL;

interface Instance {
  origin: string;
  bus: RedisBus;
  near: NearCache;
  errors: unknown[];
}

/** Forwards to Redis; once armed with a command's last bytes, it cuts the connection that sends them right after their answer. */
class CuttingProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cutAfter: string | undefined;
  private cut!: () => void;
  /** Resolves when the armed cut was made. */
  cutMade: Promise<void> = Promise.resolve();

  constructor(private readonly target: URL) {
    this.server = createServer((client) => this.pipe(client));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("no port");
    return `redis://127.0.0.1:${address.port}`;
  }

  /** The next connection that sends `ending` gets it through, gets its answer back, and is then closed; what it sent behind it is dropped. */
  arm(ending: string): void {
    this.cutAfter = ending;
    this.cutMade = new Promise<void>((resolve) => (this.cut = resolve));
  }

  private pipe(client: Socket): void {
    const server = createConnection({ host: this.target.hostname, port: Number(this.target.port || 6379) });
    this.sockets.add(client).add(server);
    let state: "open" | "awaiting answer" | "cut" = "open";
    client.on("data", (chunk: Buffer) => {
      if (state !== "open") return; // sent behind the cut command: never reaches Redis
      const text = chunk.toString("latin1");
      const ending = this.cutAfter;
      const at = ending === undefined ? -1 : text.indexOf(ending);
      if (ending === undefined || at < 0) {
        server.write(chunk);
        return;
      }
      this.cutAfter = undefined;
      state = "awaiting answer";
      server.write(chunk.subarray(0, at + ending.length));
    });
    server.on("data", (chunk: Buffer) => {
      if (state === "cut") return;
      client.write(chunk);
      if (state === "awaiting answer") {
        // The answer of the cut command (with any before it): then the connection goes, gracefully, data first.
        state = "cut";
        client.end(() => {
          server.destroy();
          this.cut();
        });
      }
    });
    const close = () => {
      client.destroy();
      server.destroy();
    };
    client.on("error", close);
    server.on("error", close);
    client.on("close", () => server.destroy());
    server.on("close", () => {
      if (state !== "cut") client.destroy();
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe.skipIf(!url)("NearCache ordered writes (ee470b2) under a connection cut", () => {
  const prefix = `herald-near-${randomUUID()}:`;
  const cachePrefix = `${prefix}cache:`;
  const raw = url ? new Redis(url) : undefined;
  const started: Instance[] = [];
  const proxies: CuttingProxy[] = [];

  async function instance(options: { via?: string; ordered: boolean }): Promise<Instance> {
    const origin = `i-${randomUUID().slice(0, 8)}`;
    const bus = new RedisBus(options.via ?? url!, prefix);
    await bus.client.ping();
    const errors: unknown[] = [];
    const near = new NearCache({
      shared: new RedisCache(bus.client, cachePrefix),
      sharedWritesOrderedWithBus: options.ordered,
      bus,
      sharedAvailable: () => bus.client.status === "ready",
      origin,
      now: () => 1_000_000,
      onError: (err) => errors.push(err),
    });
    await near.start();
    const made = { origin, bus, near, errors };
    started.push(made);
    return made;
  }

  afterEach(async () => {
    for (const { near, bus } of started.splice(0)) {
      await near.stop();
      await bus.close();
    }
    for (const proxy of proxies.splice(0)) await proxy.close();
  });
  afterAll(async () => {
    const keys = await raw!.keys(`${prefix}*`);
    if (keys.length > 0) await raw!.del(...keys);
    raw!.disconnect();
  });

  async function cutAfterTheDelete(ordered: boolean): Promise<{ bSees: unknown; inRedis: string | null; aErrors: unknown[] }> {
    const proxy = new CuttingProxy(new URL(url!));
    proxies.push(proxy);
    const a = await instance({ via: await proxy.listen(), ordered });
    const b = await instance({ ordered });
    const key = `prefs:${randomUUID()}`;
    // A fills the key, B has heard it and holds a local copy.
    const filled = await watchInvalidation(b.bus, a.origin, key);
    expect(await a.near.get(key)).toBeUndefined();
    await a.near.set(key, { soundVolume: 70 }, 3600);
    await filled.arrived;
    expect(await b.near.get(key)).toEqual({ soundVolume: 70 });

    // The network drops A's publishing connection right after the DEL's answer.
    proxy.arm(`${cachePrefix}${key}\r\n`);
    await a.near.delete(key);
    await proxy.cutMade;
    // A's next invalidation goes out after the reconnect, behind anything ioredis resends: once B has it,
    // B has heard every invalidation A will ever send of the deleted key.
    const marker = `prefs:marker-${randomUUID()}`;
    const behind = await watchInvalidation(b.bus, a.origin, marker);
    await a.near.delete(marker);
    await behind.arrived;
    return { bSees: await b.near.get(key), inRedis: await raw!.get(cachePrefix + key), aErrors: a.errors };
  }

  it("control (ordered: false, as before ee470b2): a delete whose connection dropped after the DEL's answer still reaches B", async () => {
    const { bSees, inRedis } = await cutAfterTheDelete(false);
    expect(inRedis).toBeNull();
    expect(bSees).toBeUndefined();
  });

  it("ordered (as src/runtime.ts builds it): a delete whose connection dropped after the DEL's answer still reaches B", async () => {
    const { bSees, inRedis, aErrors } = await cutAfterTheDelete(true);
    // Redis applied the delete...
    expect(inRedis).toBeNull();
    // ...and B must not keep serving the old value (it does, for NEAR_CACHE_TTL_MS: the PUBLISH was aborted, not resent).
    expect({ bSees, aErrors: aErrors.map(String) }).toEqual({ bSees: undefined, aErrors: [] });
  });
});
