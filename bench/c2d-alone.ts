/**
 * `node --expose-gc --conditions=herald-source --import tsx bench/c2d-alone.ts --side S [--count N] [--rounds R] [--perf FILE]`:
 * one side of the create-to-deliver case alone in this process (1,000 users
 * online, 32 creations in flight, a warm-up round of 3,000), for profiling
 * one server at a time. Sides: `herald` (PostgreSQL, DATABASE_URL; the Redis
 * bus when REDIS_URL is set), `embedded` (PGlite in a directory, in-memory
 * bus), `durable` (the durable relay on PostgreSQL), `durable-lite` (on
 * PGlite), `bare`.
 *
 * With `--perf FILE`, `perf record` (Linux perf: real CPU, kernel included,
 * per thread) samples this process during the measured rounds only; node runs
 * with --perf-basic-prof so JavaScript frames have names. Read it with
 * bench/perf-owners.ts. The V8 CPU profiler (BENCH_CPU_PROFILE) counts wall
 * time while the thread is preempted as the function it was in: in a
 * syscall that woke another process (a socket write to PostgreSQL), that is
 * the write, which perf does not count as the main thread's CPU.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { drive } from "./cases/create-to-deliver.js";
import { type RelayDb, type RelayMode, benchRelayTable, pgliteRelayDb, poolRelayDb, startBareServer } from "./lib/baselines.js";
import { requirePostgres, seedUsers, startBenchHerald, startEmbeddedHerald, wsUrlsFor } from "./lib/context.js";
import { LoadGenerator } from "./lib/loadgen.js";

const { values } = parseArgs({
  options: {
    side: { type: "string", default: "herald" },
    count: { type: "string", default: "15000" },
    rounds: { type: "string", default: "2" },
    perf: { type: "string" },
  },
});
const SIDES = ["herald", "embedded", "durable", "durable-lite", "bare"] as const;
type Side = (typeof SIDES)[number];
const side = values.side as Side;
if (!SIDES.includes(side)) throw new Error(`--side must be one of ${SIDES.join(", ")} (got ${values.side})`);
const count = Number(values.count);
const rounds = Number(values.rounds);
if (!(count > 0) || !(rounds > 0)) throw new Error("--count and --rounds must be positive numbers");
if (values.perf && !process.execArgv.includes("--perf-basic-prof")) {
  throw new Error("--perf needs node --perf-basic-prof (JavaScript frames have no names in perf without it)");
}

interface Target {
  url: string;
  headers: Record<string, string>;
  wsUrls: (users: string[]) => Promise<string[]>;
  acks: boolean;
  stop: () => Promise<void>;
}

const users = Array.from({ length: 1000 }, (_, i) => `c2d-${i}`);

async function start(s: Side): Promise<Target> {
  const herald = { authorization: "Bearer test-api-key" };
  if (s === "herald" || s === "embedded") {
    const h = s === "herald" ? await startBenchHerald() : await startEmbeddedHerald();
    await seedUsers(h, users.length, "c2d-");
    return { url: `${h.baseUrl}/api/notifications`, headers: herald, wsUrls: (u) => wsUrlsFor(h, u), acks: true, stop: () => h.stop() };
  }
  // A relay: its own table on its own database, dropped (or deleted) when it stops.
  const relay = async (mode: RelayMode, db?: RelayDb, table?: string, cleanup: () => Promise<void> = async () => {}): Promise<Target> => {
    const r = await startBareServer({ relay: mode, ...(db ? { db, table } : {}) });
    const wsUrls = async (u: string[]) => u.map((id) => `ws://${r.url}/?user=${id}`);
    const stop = async () => {
      await r.close();
      await cleanup();
    };
    return { url: `http://${r.url}/`, headers: {}, wsUrls, acks: false, stop };
  };
  if (s === "bare") return relay("bare");
  if (s === "durable") {
    const pool = new pg.Pool({ connectionString: requirePostgres(), max: 10 });
    const table = `bench_relay_alone_${process.pid}`;
    await pool.query(benchRelayTable(table));
    return relay("group-commit", poolRelayDb(pool), table, async () => {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    });
  }
  const dir = mkdtempSync(path.join(tmpdir(), "herald-bench-relay-"));
  const lite = await PGlite.create(dir);
  await lite.exec(benchRelayTable("bench_relay"));
  return relay("group-commit", pgliteRelayDb(lite), "bench_relay", async () => {
    await lite.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

async function startPerf(file: string): Promise<ChildProcess> {
  const perf = spawn("perf", ["record", "-e", "cpu-clock", "-F", "2000", "-g", "-p", String(process.pid), "-o", file], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  perf.stderr?.on("data", (d) => {
    err += d;
  });
  // perf prints nothing when it starts; a failure (not installed, not permitted) ends it at once.
  const failed = await Promise.race([once(perf, "exit").then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
  if (failed) throw new Error(`perf record did not start: ${err.trim() || "exited"}`);
  return perf;
}

const target = await start(side);
const gen = await LoadGenerator.start(2);
await gen.connect(await target.wsUrls(users), target.acks);
await drive(target.url, target.headers, gen, users, 3000);
const perf = values.perf ? await startPerf(values.perf) : undefined;
const lines: string[] = [];
for (let i = 0; i < rounds; i++) {
  const r = await drive(target.url, target.headers, gen, users, count);
  const per = (ms: number) => (ms / r.ok).toFixed(3);
  lines.push(
    `${side} round ${i + 1}: ${r.throughput.toFixed(0)} creations/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms; CPU ms per creation: main thread ${per(r.cpu.mainMs)} (busy ${(r.cpu.mainBusy * 100).toFixed(0)}%), ` +
      `PostgreSQL ${per(r.cpu.postgresMs)}, Redis ${per(r.cpu.redisMs)}, busiest other threads ${r.cpu.otherThreadsMs.slice(0, 3).map(per).join(" / ")}; main-thread writes ${(r.cpu.mainWrites / r.ok).toFixed(2)} and reads ${(r.cpu.mainReads / r.ok).toFixed(2)} per creation`,
  );
}
if (perf) {
  perf.kill("SIGINT");
  await once(perf, "exit");
  lines.push(`perf: ${values.perf}, the main thread is tid ${process.pid}: node --import tsx bench/perf-owners.ts ${values.perf} ${process.pid}`);
}
console.log(lines.join("\n"));
await gen.close();
await target.stop();
process.exit(0);
