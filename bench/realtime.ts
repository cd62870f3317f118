/**
 * `node --expose-gc --import tsx bench/realtime.ts [--sizes 1000,5000] [--rounds 3] [--no-write]`
 *
 * WebSocket fan-out: broadcast deliveries per second to N connected,
 * authenticated clients (~300 B notification), Herald's `publishBroadcast`
 * (per-recipient id/seq/userId spliced into a once-serialized body, sent-mark
 * batched to the database) against a bare `ws` server sending one
 * pre-serialized buffer to every client, in the same run. Deliveries are
 * counted on the server side: the timed window ends when the server's TCP
 * sockets have handed the kernel every byte of the round (checked to the byte
 * against the frames expected, whatever path the server takes to its
 * sockets), with the clients paused and their sockets not reading meanwhile,
 * so the load generator takes no CPU from the server and cannot set the pace.
 * A socket still holding bytes when the publish returns (the kernel's buffers
 * were full: the clients would be the limit) marks the row invalid. Then
 * the clients resume and must each count every frame (worker threads that
 * only match a prefix). Also the server heap per idle connection (Herald:
 * authenticated, synced; bare: just open).
 * Database: PostgreSQL when DATABASE_URL is set (own schema), else in-memory
 * PGlite; prints a table and
 * appends it to bench/RESULTS.md. With BENCH_CPU_PROFILE=<dir>, the last
 * round of each side and size writes a V8 CPU profile of its timed window.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { Worker } from "node:worker_threads";
import { WebSocketServer } from "ws";
import { mintToken } from "../src/auth/index.js";
import { MemoryBus } from "../src/bus/index.js";
import { loadConfig } from "../src/config/index.js";
import pg from "pg";
import { migrate, openDatabase, quoteIdent } from "../src/db/index.js";
import type { BroadcastBase, BroadcastRecipient } from "../src/notifications/index.js";
import { NotificationWebSocketServer } from "../src/realtime/index.js";
import { BroadcastTemplate } from "../src/realtime/frames.js";
import { createRuntime } from "../src/runtime.js";
import { appendResults } from "./lib/report.js";
import { profiled } from "./lib/resources.js";
import { describeMachine } from "./lib/machine.js";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "1000,5000" }, rounds: { type: "string", default: "3" }, "no-write": { type: "boolean" } } });
const sizes = values.sizes!.split(",").map(Number);
const rounds = Number(values.rounds);
const SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789";
const THREADS = 2;

v8.setFlagsFromString("--expose-gc");
const gc = (globalThis as { gc?: () => void }).gc ?? (vm.runInNewContext("gc") as () => void);
const now = () => performance.timeOrigin + performance.now();

/** A reply from fanout-clients-worker; `at` marks the frame that completes an armed count. */
type Reply = { ok: boolean; at?: number; utilization?: number; error?: string };

class Thread {
  // Workers do not inherit the tsx loader on Node 20: register it in the thread, then load the TypeScript worker.
  private readonly worker = new Worker(
    `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(new URL("./lib/fanout-clients-worker.ts", import.meta.url).href)}); });`,
    { eval: true },
  );
  private replies: ((m: Reply) => void)[] = [];
  private done: ((m: { at: number; utilization: number }) => void) | undefined;
  constructor() {
    this.worker.on("message", (m: Reply) => {
      if (m.at !== undefined) return this.done?.(m as { at: number; utilization: number });
      this.replies.shift()?.(m);
    });
  }
  call<T = unknown>(message: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.replies.push((m) => (m.ok ? resolve(m as T) : reject(new Error(m.error))));
      this.worker.postMessage(message);
    });
  }
  /** Arms the count and returns a promise of the time the last expected frame arrived (its utilisation: from arming to then). */
  async expect(count: number): Promise<{ done: Promise<{ at: number; utilization: number }> }> {
    const done = new Promise<{ at: number; utilization: number }>((resolve) => (this.done = resolve));
    await this.call({ cmd: "expect", count });
    return { done }; // wrapped: an async function would otherwise wait for it
  }
  terminate() {
    return this.worker.terminate();
  }
}

const threads = Array.from({ length: THREADS }, () => new Thread());
const share = <T>(items: T[], i: number) => items.filter((_, j) => j % THREADS === i);
const heap = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

async function connectAll(urls: string[]): Promise<void> {
  await Promise.all(threads.map((t, i) => t.call({ cmd: "connect", urls: share(urls, i) })));
}
async function closeAll(): Promise<void> {
  await Promise.all(threads.map((t) => t.call({ cmd: "close" })));
  // Wait for the server side of every socket to be gone, or the next heap baseline still holds them.
  const deadline = Date.now() + 10_000;
  while ((herald.getLocalConnectionsCount() > 0 || bare.clients.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await runtime.analytics.flush();
}

/**
 * The server side of every socket (Herald's and the bare server's): the
 * timed window ends when the servers handed the kernel every byte of the
 * round (no socket holds unwritten bytes), and the bytes they wrote in it are
 * checked against the frames expected, so the count is the server's, whatever
 * path (ws.send or a prebuilt frame) a server takes to its sockets.
 */
const serverSockets = new Set<Socket>();
/** Header bytes of an unmasked frame carrying `length` bytes (RFC 6455 5.2), what any server puts before the JSON. */
const frameHeaderLength = (length: number) => (length < 126 ? 2 : length < 65_536 ? 4 : 10);
function track(server: Server): void {
  server.on("connection", (socket: Socket) => {
    serverSockets.add(socket);
    socket.once("close", () => serverSockets.delete(socket));
  });
}
/** Bytes the kernel accepted from the servers' sockets so far (`bytesWritten` counts what is still queued too: subtract it). */
const kernelBytes = () => {
  let sum = 0;
  for (const s of serverSockets) sum += s.bytesWritten - s.writableLength;
  return sum;
};

interface Measured {
  /** Deliveries/s on the server side: frames handed to the kernel / window. */
  rate: number;
  /** Highest generator-thread event-loop utilisation while the window ran (clients paused: should be ~0). */
  windowUtilization: number;
  /** Highest generator-thread utilisation from arming to the last frame counted (the paused window and the drain after it). */
  drainUtilization: number;
  /** Sockets still holding unwritten bytes when the publish returned (the kernel's buffers were full: the clients could set the pace). */
  backpressured: number;
  /** How long `afterWindow` took (Herald: writing the round's sent marks, which the window does not include). */
  afterMs: number;
  /** CPU time of the main thread (the server's) in the window, ms: what the rate costs, apart from time the thread waited for a core. */
  mainCpuMs: number;
}

/** CPU ms of this process's main thread so far (/proc, whole clock ticks of 10 ms; NaN where /proc is missing). */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, fields 14 and 15 of stat(5), are the 12th and 13th after the command name.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/**
 * Runs `publish` with the clients paused and resolves with the server-side
 * deliveries/s (`frameBytes`: the bytes of the round's frames, headers
 * included, which the servers' sockets must hand the kernel exactly), once
 * every client (resumed) counted `perClient` notifications.
 */
async function measure(
  n: number,
  perClient: number,
  frameBytes: number,
  publish: () => Promise<void>,
  afterWindow?: () => Promise<void>,
  profileName?: string,
): Promise<Measured> {
  const target = n * perClient;
  const dones = await Promise.all(threads.map((t, i) => t.expect(share(Array.from({ length: n }), i).length * perClient)));
  await Promise.all(threads.map((t) => t.call({ cmd: "pause" })));
  const bytes0 = kernelBytes();
  let held: Socket[] = [];
  const window = async () => {
    const cpu0 = mainThreadCpuMs();
    const t0 = now();
    await publish();
    held = [...serverSockets].filter((s) => s.writableLength > 0);
    const deadline = Date.now() + 60_000;
    while (held.some((s) => s.writableLength > 0 && !s.destroyed)) {
      if (Date.now() > deadline) throw new Error(`server sockets still held ${held.reduce((a, s) => a + s.writableLength, 0)} bytes after 60 s`);
      await new Promise((r) => setImmediate(r));
    }
    const end = now();
    return { t0, end, cpuMs: mainThreadCpuMs() - cpu0 };
  };
  // BENCH_CPU_PROFILE=<dir>: the last round's timed window of each side and size is profiled (the profiler's own cost is in that round's rate).
  const { t0, end, cpuMs } = profileName === undefined ? await window() : await profiled(profileName, window);
  const written = kernelBytes() - bytes0;
  if (written !== frameBytes) throw new Error(`the server wrote ${written} bytes in the window, expected ${frameBytes} (${target} frames)`);
  const a0 = now();
  await afterWindow?.();
  const afterMs = now() - a0;
  const paused = await Promise.all(threads.map((t) => t.call<{ utilization: number }>({ cmd: "resume" })));
  const received = await Promise.race([
    Promise.all(dones.map((d) => d.done)),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`clients did not count all ${target} frames within 60 s`)), 60_000).unref()),
  ]);
  return {
    rate: target / ((end - t0) / 1000),
    windowUtilization: Math.max(...paused.map((p) => p.utilization)),
    drainUtilization: Math.max(...received.map((r) => r.utilization)),
    backpressured: held.length,
    afterMs,
    mainCpuMs: cpuMs,
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

const base: BroadcastBase = {
  type: "platform_update", priority: "normal", title: "Scheduled maintenance tonight",
  message: "The dashboard will be read-only from 02:00 to 02:30 UTC while we upgrade the database.",
  description: null, icon: "🛠", actionUrl: "/status", actionLabel: "Status page", read: false, archived: false,
  deliveryStatus: "pending", sentAt: null, deliveredAt: null, readAt: null, relatedId: null, data: null,
  createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
};
const presentation = { sound: true, volume: 70, desktop: true, silent: false };

const dataDir = mkdtempSync(path.join(tmpdir(), "herald-bench-"));
// Real PostgreSQL when DATABASE_URL is set (as `npm run bench` runs it), in a schema of its own; else in-memory PGlite.
const pgUrl = process.env.DATABASE_URL;
const schema = `bench_realtime_${randomUUID().slice(0, 8)}`;
const admin = pgUrl ? new pg.Client({ connectionString: pgUrl }) : undefined;
if (admin) {
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
}
const database = await openDatabase(pgUrl ? { url: pgUrl, schema } : {});
await migrate(database);
const bus = new MemoryBus();
const runtime = await createRuntime(loadConfig({ NODE_ENV: "test", JWT_SECRET: SECRET, DATA_DIR: dataDir, LOG_LEVEL: "silent" }), { database, bus });
const heraldHttp = createServer();
track(heraldHttp);
runtime.start();
const herald = new NotificationWebSocketServer(heraldHttp, runtime, { heartbeatMs: 3_600_000 });
await herald.start();
const heraldPort = await listen(heraldHttp);
const bareHttp = createServer();
track(bareHttp);
const bare = new WebSocketServer({ server: bareHttp, perMessageDeflate: false });
const barePort = await listen(bareHttp);

/** Waits until the clients' syncs (Herald) or opens arrived. */
async function waitReady(n: number): Promise<void> {
  for (;;) {
    const ready = (await Promise.all(threads.map((t) => t.call<{ ready: number }>({ cmd: "expect", count: Number.POSITIVE_INFINITY })))).reduce((s, r) => s + r.ready, 0);
    if (ready >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One-time costs out of the per-connection figure: both servers first accept
 * and close a batch of clients, so the code compiled for the connect path,
 * grown pools and the like are in the baseline heap of both.
 */
const WARM_UP = 200;
const IDLE_MS = 1_500;
{
  const warmUsers = Array.from({ length: WARM_UP }, (_, i) => `bench-warm-${i}`);
  const warmTokens = await Promise.all(warmUsers.map((sub) => mintToken(SECRET, { sub, expiresIn: "2h" })));
  await connectAll(warmTokens.map((t) => `ws://127.0.0.1:${heraldPort}/ws?token=${t}`));
  await waitReady(WARM_UP);
  await closeAll();
  await connectAll(warmUsers.map(() => `ws://127.0.0.1:${barePort}/`));
  await closeAll();
}

const rows: string[] = [];
/** Keeps the worst of each figure over a size's rounds. */
const note = (acc: { window: number; drain: number; backpressured: number }, m: Measured) => {
  acc.window = Math.max(acc.window, m.windowUtilization);
  acc.drain = Math.max(acc.drain, m.drainUtilization);
  acc.backpressured += m.backpressured;
};
const notes: string[] = [];
let frameBytes = 0;
let bareFrameBytes = 0;
for (const n of sizes) {
  const burst = n >= 5000 ? 10 : 30;
  const users = Array.from({ length: n }, (_, i) => `bench-${n}-${i}`);
  const tokens = await Promise.all(users.map((sub) => mintToken(SECRET, { sub, expiresIn: "2h" })));

  // Herald: connect, wait for every sync, measure memory, then the rounds.
  process.stderr.write(`bench: ${n} clients\n`);
  const h0 = heap();
  await connectAll(tokens.map((t) => `ws://127.0.0.1:${heraldPort}/ws?token=${t}`));
  await waitReady(n);
  process.stderr.write("bench: herald clients synced\n");
  // Idle: past the connect burst (the per-user connect rate buckets are forgotten once refilled).
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const heraldPerConn = (heap() - h0) / n;
  const heraldRates: number[] = [];
  const heraldCpu: number[] = [];
  const heraldLoad = { window: 0, drain: 0, backpressured: 0 };
  const sentMarksMs: number[] = [];
  // Round -1 warms up (compiles the send path) and is not counted, on both servers.
  for (let r = -1; r < rounds; r++) {
    const batches: BroadcastRecipient[][] = Array.from({ length: burst }, () => users.map((userId, i) => ({ userId, id: randomUUID(), seq: i + 1, presentation })));
    // The bytes the round must put on the sockets: each recipient's frame (header + JSON), as a WebSocket server frames it.
    const template = new BroadcastTemplate(base);
    const payloads = batches.flat().map((rec) => Buffer.byteLength(template.frameFor(rec).text));
    frameBytes = payloads.reduce((a, b) => a + b, 0) / payloads.length;
    const m = await measure(
      n,
      burst,
      payloads.reduce((a, b) => a + b + frameHeaderLength(b), 0),
      async () => {
        for (const recipients of batches) await herald.publishBroadcast(base, recipients);
      },
      () => herald.flushDeliveryLog(),
      r === rounds - 1 ? `realtime-herald-${n}` : undefined,
    );
    if (r < 0) continue;
    heraldRates.push(m.rate);
    sentMarksMs.push(m.afterMs);
    heraldCpu.push((m.mainCpuMs * 1000) / (n * burst));
    note(heraldLoad, m);
  }
  await closeAll();
  await runtime.analytics.flush();

  // Bare ws: the same clients (unauthenticated), the same frame size.
  const b0 = heap();
  await connectAll(users.map(() => `ws://127.0.0.1:${barePort}/`));
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const barePerConn = (heap() - b0) / n;
  const bareRates: number[] = [];
  const bareCpu: number[] = [];
  const bareLoad = { window: 0, drain: 0, backpressured: 0 };
  // A mid-directory user and seq, so the frame is as long as Herald's on average.
  const buffers = Array.from({ length: burst }, () => Buffer.from(new BroadcastTemplate(base).frameFor({ userId: users[n >> 1]!, id: randomUUID(), seq: n >> 1, presentation }).text));
  bareFrameBytes = buffers[0]!.length;
  for (let r = -1; r < rounds; r++) {
    const m = await measure(
      n,
      burst,
      n * buffers.reduce((a, b) => a + b.length + frameHeaderLength(b.length), 0),
      async () => {
        for (const buf of buffers) for (const client of bare.clients) client.send(buf);
      },
      undefined,
      r === rounds - 1 ? `realtime-bare-${n}` : undefined,
    );
    if (r < 0) continue;
    bareRates.push(m.rate);
    note(bareLoad, m);
    bareCpu.push((m.mainCpuMs * 1000) / (n * burst));
  }
  await closeAll();

  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  rows.push(`| broadcast deliveries/s, ${fmt(n)} clients x ${burst} messages | ${fmt(med(heraldRates))} (${heraldRates.map(fmt).join(", ")}) | ${fmt(med(bareRates))} (${bareRates.map(fmt).join(", ")}) | ${(med(heraldRates) / med(bareRates)).toFixed(2)} |`);
  rows.push(`| server heap + external per idle connection, ${fmt(n)} clients | ${(heraldPerConn / 1024).toFixed(1)} KiB | ${(barePerConn / 1024).toFixed(1)} KiB | ${(heraldPerConn / barePerConn).toFixed(2)} |`);
  const load = (l: typeof heraldLoad) =>
    `${l.backpressured} sockets backpressured, generator utilisation ${(l.window * 100).toFixed(0)}% in the timed window, ${(l.drain * 100).toFixed(0)}% up to the last frame counted`;
  // Invalid when the clients could have set the pace: a send found the socket buffers full, or the (paused) generator was busy in the window.
  const limited = heraldLoad.backpressured + bareLoad.backpressured > 0 || Math.max(heraldLoad.window, bareLoad.window) > 0.9;
  const us = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
  notes.push(`${fmt(n)} clients: Herald rounds ${load(heraldLoad)}; bare rounds ${load(bareLoad)}${limited ? " - the generator may have been the limit" : ""}; Herald's sent marks of a round (${fmt(n * burst)} ids, one batched UPDATE, after the window) written in ${sentMarksMs.map((x) => x.toFixed(0)).join(", ")} ms; main-thread CPU per delivery in the window (whole 10 ms ticks), Herald ${us(heraldCpu)} us, bare ${us(bareCpu)} us.`);
}

const table = ["| case | Herald | bare ws baseline | ratio (Herald / baseline) |", "| --- | --- | --- | --- |", ...rows].join("\n");
notes.unshift(
  `Frame: ${frameBytes.toFixed(0)} B of JSON per notification on average for Herald, ${bareFrameBytes} B for bare (the DTO's full field set; the content part is ~300 B), one text frame per recipient and message on both. perMessageDeflate off on both sides; the server (Herald or bare) on the main thread, the clients in ${THREADS} worker threads of the same process, paused during each timed window with their sockets' reading stopped (the frames wait in the kernel), so the generator neither reads nor sets the pace; deliveries/s = frames / time from the first publish until the server's sockets handed the kernel every byte of the round, checked to the byte against the frames expected; then the clients resume and must each count every frame; one warm-up round, then ${rounds} rounds each, median first.`,
  `Herald: publishBroadcast with a fresh id/seq per recipient (each recipient's whole WebSocket frame built in one Buffer around the once-serialized body, written to the socket as one write), the connection's hold/in-flight bookkeeping and sent-mark queueing; the batched sent UPDATE over unnest() (to ${pgUrl ? "PostgreSQL" : "in-memory PGlite"}; ids are fabricated, so it matches no rows) runs after the window and is timed apart. Bare: one Buffer per message sent to every ws client with ws.send.`,
  `Memory: main-isolate heap + external after GC, divided by connections (kernel socket buffers not included), ${IDLE_MS / 1000} s after the last client connected; both servers first accepted and closed ${WARM_UP} clients, so one-time costs (compiled code, grown pools) are not counted per connection. Herald connections are authenticated (JWT verified at upgrade), registered in presence and websocket_sessions, synced, heartbeated and on the token-expiry wheel.`,
  describeMachine(),
);
process.stdout.write(`\n${table}\n\n${notes.map((x) => `- ${x}`).join("\n")}\n`);
if (!values["no-write"]) appendResults("bench/realtime.ts", `node --expose-gc --import tsx bench/realtime.ts --sizes ${values.sizes} --rounds ${rounds}`, table, notes);

await herald.close();
await new Promise((r) => heraldHttp.close(r));
bare.close();
await new Promise((r) => bareHttp.close(r));
await runtime.close();
await bus.close();
await database.close();
if (admin) {
  await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  await admin.end();
}
await Promise.all(threads.map((t) => t.terminate()));
rmSync(dataDir, { recursive: true, force: true });
