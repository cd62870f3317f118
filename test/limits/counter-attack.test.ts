/**
 * Adversarial guards for RedisCounter's batched hits (60188fb): the hits of
 * one event-loop turn go to Redis as one script call per 500. A caller must
 * never get more than its limit out of it: across turns, across two
 * instances on one Redis, after the script cache was flushed or Redis was
 * restarted, and a Redis lost between hit() and the flush must neither leave
 * a caller unanswered nor let a flood through once the outage is known.
 * The restart and the outage use a redis-server of their own (never the
 * shared one).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { Redis, type RedisOptions } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { type Hit, LocalCounter, RedisCounter } from "../../src/limits/index.js";
import { usingRedis } from "../support/database.js";

const clients: Redis[] = [];
const servers: ChildProcess[] = [];
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

/** A redis-server of this test's own on `port`, resolved once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "ignore"] });
  servers.push(proc);
  let out = "";
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    proc.once("exit", () => reject(new Error(`redis-server exited: ${out}`)));
  });
  return proc;
}

async function stopRedis(proc: ChildProcess): Promise<void> {
  const exited = once(proc, "exit");
  proc.kill("SIGKILL");
  await exited;
}

function client(url: string, options: RedisOptions = {}): Redis {
  // Herald's limiter connection: a duplicate of the bus's (maxRetriesPerRequest 2), no auto-pipelining.
  const r = new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: false, ...options });
  r.on("error", () => undefined);
  clients.push(r);
  return r;
}

const sorted = (hits: (Hit | undefined)[]) => hits.map((h) => h?.count ?? -1).sort((a, b) => a - b);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe.runIf(usingRedis)("RedisCounter under attack (batched hits)", () => {
  it("two instances on one Redis, one key hit 300 times per turn by each over 10 turns: every hit counted once, exactly", async () => {
    const a = client(process.env.REDIS_URL!);
    const b = client(process.env.REDIS_URL!);
    await Promise.all([a.ping(), b.ping()]);
    const ns = `herald-test-${randomUUID()}:ratelimit:`;
    const ca = new RedisCounter(a, ns, new LocalCounter());
    const cb = new RedisCounter(b, ns, new LocalCounter());
    const all: Promise<Hit | undefined>[] = [];
    // Turns not awaited one by one: batches of both instances overlap on Redis.
    for (let turn = 0; turn < 10; turn++) {
      for (let i = 0; i < 300; i++) all.push(ca.hit("k", 60_000), cb.hit("k", 60_000));
      await new Promise((r) => setImmediate(r));
    }
    const answers = await Promise.all(all);
    // No hit let through uncounted, none counted twice: with a limit of L exactly L answers are <= L.
    expect(sorted(answers)).toEqual(oneTo(6000));
    expect(answers.filter((h) => h!.count <= 100)).toHaveLength(100);
    expect(await a.get(`${ns}k`)).toBe("6000");
    await a.del(`${ns}k`);
  });

  it("a window that ended (key gone) or lost its expiry between turns starts again / gets it back", async () => {
    const r = client(process.env.REDIS_URL!);
    await r.ping();
    const ns = `herald-test-${randomUUID()}:ratelimit:`;
    const counter = new RedisCounter(r, ns, new LocalCounter());
    const first = await Promise.all(Array.from({ length: 3 }, () => counter.hit("w", 60_000)));
    expect(first.map((h) => h!.count)).toEqual([1, 2, 3]);
    await r.del(`${ns}w`); // the window's end, as Redis expires it
    await r.set(`${ns}p`, "7"); // a counter whose expiry was lost
    const [again, persisted] = await Promise.all([counter.hit("w", 60_000), counter.hit("p", 60_000)]);
    expect(again).toMatchObject({ count: 1 });
    expect(again!.resetMs).toBeGreaterThan(59_000);
    expect(persisted).toMatchObject({ count: 8 });
    expect(await r.pttl(`${ns}p`)).toBeGreaterThan(59_000);
    await r.del(`${ns}w`, `${ns}p`);
  });

  it("after SCRIPT FLUSH and after a Redis restart, batches over 500 are still counted exactly (NOSCRIPT is resent, never let through)", async () => {
    const port = await freePort();
    let server = await startRedis(port);
    const url = `redis://127.0.0.1:${port}`;
    const r = client(url, { retryStrategy: () => 20 });
    const other = client(url);
    await Promise.all([r.ping(), other.ping()]);
    const counter = new RedisCounter(r, "t:", new LocalCounter());
    const otherCounter = new RedisCounter(other, "t:", new LocalCounter());
    expect((await Promise.all(Array.from({ length: 10 }, () => counter.hit("k", 60_000)))).map((h) => h!.count)).toEqual(oneTo(10));

    await other.script("FLUSH");
    // Three calls (500 + 500 + 200) all meet NOSCRIPT; another instance loads the script meanwhile.
    const flushed = Array.from({ length: 1200 }, () => counter.hit("k", 60_000));
    const fromOther = Array.from({ length: 50 }, () => otherCounter.hit("k", 60_000));
    const answers = await Promise.all([...flushed, ...fromOther]);
    expect(answers.every((h) => h !== undefined)).toBe(true);
    expect(sorted(answers)).toEqual(oneTo(1260).slice(10));

    // Restart: a fresh Redis (no keys, no scripts); once the client is ready again, counts start over.
    await stopRedis(server);
    // Once the client has seen the connection close (before that, a hit is sent, fails, and is counted locally).
    if (r.status === "ready") await once(r, "close");
    const whileDown = await counter.hit("k", 60_000); // answered locally at once (not counted in Redis)
    expect(whileDown).toMatchObject({ count: 1 });
    server = await startRedis(port);
    if (r.status !== "ready") await once(r, "ready");
    const restarted = await Promise.all(Array.from({ length: 1100 }, () => counter.hit("k", 60_000)));
    expect(restarted.map((h) => h?.count)).toEqual(oneTo(1100));
    await stopRedis(server);
  });

  it("one unusable key in a turn's batch (a script error) does not let the batch through: its hits are counted locally", async () => {
    const r = client(process.env.REDIS_URL!);
    await r.ping();
    const prefix = `t:${randomUUID()}:`;
    // A key of another type makes INCR fail, and with it the whole script call.
    await r.hset(`${prefix}poisoned`, "x", "1");
    const counter = new RedisCounter(r, prefix, new LocalCounter());
    const answers = await Promise.all([counter.hit("poisoned", 60_000), ...Array.from({ length: 30 }, () => counter.hit("flood", 60_000))]);
    // Before: every answer of the batch was undefined (not counted), so the flood was let through.
    expect(answers.every((h) => h !== undefined)).toBe(true);
    expect(sorted(answers.slice(1))).toEqual(oneTo(30));
    await r.del(`${prefix}poisoned`);
  });

  it("Redis lost between hit() and the flush: every hit is answered (none hangs), and the flood is limited locally once the loss is known", async () => {
    const port = await freePort();
    const server = await startRedis(port);
    const r = client(`redis://127.0.0.1:${port}`, { retryStrategy: () => 20 });
    await r.ping();
    const counter = new RedisCounter(r, "t:", new LocalCounter());
    const taken = Array.from({ length: 700 }, () => counter.hit("flood", 60_000));
    await stopRedis(server); // after hit(), before (or while) the batch is sent
    const answers = await Promise.all(taken);
    expect(answers).toHaveLength(700);
    if (r.status === "ready") await once(r, "close");
    // The loss is known: the next flood is counted locally, past any limit.
    const next = await Promise.all(Array.from({ length: 200 }, () => counter.hit("flood", 60_000)));
    expect(next.every((h) => h !== undefined)).toBe(true);
    expect(Math.max(...next.map((h) => h!.count))).toBeGreaterThanOrEqual(200);
  });
});
