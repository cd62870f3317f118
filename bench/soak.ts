/**
 * `npm run soak [-- --minutes N]` (not in CI): Herald in this process on real
 * PostgreSQL (and Redis when REDIS_URL is set) under a steady, moderate load
 * for 30 minutes by default, sampled every 10 s; then a table of first / last
 * / min / max and the least-squares slope per hour of each figure, judged
 * against budgets, appended to bench/RESULTS.md (unless --no-write).
 *
 * The load runs in a child process (this file with `--role load`), so the
 * heap, RSS, file descriptors and event loop measured here are the server's
 * alone: online users on WebSocket acking what they receive, creations at a
 * fixed rate (a quarter of them for offline users), reads and marks-read over
 * REST, one reconnect a second with the resume cursor, and a broadcast to the
 * whole directory every two minutes. Each sample forces a full GC first
 * (node --expose-gc), so the heap figure is live data rather than wherever
 * the sawtooth happened to be. Exits non-zero when a budget is missed or
 * requests failed.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import http from "node:http";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import WebSocket from "ws";
import { mintToken } from "../src/auth/index.js";
import { RedisBus } from "../src/bus/index.js";
import { loadConfig } from "../src/config/index.js";
import { createHerald } from "../src/herald.js";
import { appendResults } from "./lib/report.js";
import { percentile } from "./lib/stats.js";
import { describeMachine } from "./lib/machine.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    users: { type: "string", default: "400" },
    online: { type: "string", default: "300" },
    rate: { type: "string", default: "20" },
    "sample-seconds": { type: "string", default: "10" },
    "no-write": { type: "boolean" },
    role: { type: "string", default: "server" },
  },
});

const SECRET = "soak-secret-that-is-long-enough-for-hs256-0123456789";
const POOL_SIZE = 20; // src/db/database.ts default

interface LoadPlan {
  baseUrl: string;
  users: string[];
  online: number;
  rate: number;
  minutes: number;
}

interface LoadWindow {
  created: number;
  statuses: Record<string, number>;
  delivered: number;
  p50: number;
  p99: number;
  reads: number;
  reconnects: number;
  broadcasts: number;
  connected: number;
  failures: number;
}

// ---------------------------------------------------------------- server side

interface Sample {
  minutes: number;
  heapMB: number;
  /** Buffers and other memory outside the JS heap that V8 accounts for. */
  externalMB: number;
  rssMB: number;
  /** The machine's 1-minute load average: the other work on the shared cores. */
  load1: number;
  fds: number;
  db: number;
  lagP99: number;
  load: LoadWindow;
}

async function serverRole(): Promise<void> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error("the soak runs against real PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test");
  const minutes = Number(values.minutes);
  const userCount = Number(values.users);
  const online = Math.min(userCount, Number(values.online));
  const rate = Number(values.rate);
  const everyMs = Number(values["sample-seconds"]) * 1000;
  const gc = (globalThis as { gc?: () => void }).gc;

  // A database of its own, and an application_name to count its connections by.
  const id = randomBytes(4).toString("hex");
  const dbName = `herald_soak_${id}`;
  const appName = `herald-soak-${id}`;
  const admin = new pg.Client({ connectionString: adminUrl, application_name: "herald-soak-sampler" });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  dbUrl.searchParams.set("application_name", appName);

  const dataDir = mkdtempSync(path.join(tmpdir(), "herald-soak-"));
  const config = loadConfig({
    NODE_ENV: "development",
    JWT_SECRET: SECRET,
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    DATABASE_URL: dbUrl.toString(),
    HERALD_RATE_LIMIT_PER_MINUTE: "100000",
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
  });
  // Its own prefix on a shared Redis, so no other run's traffic reaches it.
  const bus = process.env.REDIS_URL ? new RedisBus(process.env.REDIS_URL, `herald-soak-${id}:`) : undefined;
  const herald = await createHerald({ config, jobs: true, serveWeb: false, ...(bus ? { bus } : {}) });
  const baseUrl = await herald.listen(0, "127.0.0.1");
  const users = Array.from({ length: userCount }, (_, i) => `soak-${id}-${i}`);
  await herald.runtime.database.query(
    "INSERT INTO users (id, email, timezone) SELECT $1 || g, $1 || g || '@soak.test', 'UTC' FROM generate_series(0, $2 - 1) g",
    [`soak-${id}-`, userCount],
  );

  const load = fork(fileURLToPath(import.meta.url), ["--role", "load"], { execArgv: ["--conditions=herald-source", "--import", "tsx"], stdio: "inherit" });
  const ask = askChild(load);
  await ask<{ ready: true }>({ cmd: "start", plan: { baseUrl, users, online, rate, minutes } satisfies LoadPlan });

  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const started = Date.now();
  const end = started + minutes * 60_000;
  const samples: Sample[] = [];
  process.stderr.write(
    `soak: ${minutes} min, ${userCount} users (${online} online), ${rate} creations/s, sampling every ${everyMs / 1000} s${gc ? "" : " (no --expose-gc: heap not collected before sampling)"}\n`,
  );
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(everyMs, end - Date.now()))); // the sampling period
    const lagP99 = lag.percentile(99) / 1e6;
    gc?.();
    const mem = process.memoryUsage();
    const fds = readdirSync("/proc/self/fd").length;
    const db = Number((await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [appName])).rows[0]!.n);
    const window = await ask<LoadWindow>({ cmd: "window" });
    lag.reset();
    const s: Sample = {
      minutes: (Date.now() - started) / 60_000,
      heapMB: mem.heapUsed / 2 ** 20,
      externalMB: mem.external / 2 ** 20,
      rssMB: mem.rss / 2 ** 20,
      load1: loadavg()[0]!,
      fds,
      db,
      lagP99,
      load: window,
    };
    samples.push(s);
    process.stderr.write(
      `soak ${s.minutes.toFixed(1)} min: heap ${s.heapMB.toFixed(1)} MB, external ${s.externalMB.toFixed(1)} MB, rss ${s.rssMB.toFixed(1)} MB, fds ${fds}, db ${db}, ` +
        `lag p99 ${lagP99.toFixed(1)} ms, load average ${s.load1.toFixed(1)}; ` +
        `created ${window.created}, delivered ${window.delivered} (p99 ${Number(window.p99).toFixed(1)} ms), reads ${window.reads}, reconnects ${window.reconnects}, ` +
        `online ${window.connected}, failures ${window.failures}\n`,
    );
  }
  lag.disable();
  const totals = await ask<{ created: number; delivered: number; failures: number; statuses: Record<string, number> }>({ cmd: "stop" });
  await once(load, "exit");
  await herald.stop();
  await bus?.close();
  // A graceful stop closes every connection of the pool: what is left is reported.
  const leftOpen = (
    await admin.query<{ state: string; query: string }>("SELECT state, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query FROM pg_stat_activity WHERE application_name = $1", [appName])
  ).rows;
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  rmSync(dataDir, { recursive: true, force: true });

  const { table, failed } = judge(samples, minutes);
  const notes = [
    `Load: ${userCount} users in the directory, ${online} online on WebSocket (acking every notification), ${rate} creations/s over REST (random user, so a quarter offline), ` +
      `2 reads/s (GET /api/notifications?limit=20 then PATCH read on an unread one), read-all every 10 s, 1 reconnect/s with the resume cursor, a directory broadcast every 2 min; ` +
      `load generator in a child process; Herald with jobs on, ${process.env.REDIS_URL ? "Redis bus" : "in-process bus"}, PostgreSQL pool of ${POOL_SIZE}.`,
    `Totals: ${totals.created} creations answered 201, ${totals.delivered} notifications delivered on WebSocket, ${totals.failures} failed requests; statuses ${JSON.stringify(totals.statuses)}.`,
    `Database connections still open after herald.stop(): ${leftOpen.length}${leftOpen.length ? ` (${leftOpen.map((r) => `${r.state}: ${r.query}`).join("; ")})` : ""}.`,
    `Event-loop lag p99 above 50 ms in ${samples.filter((s) => s.lagP99 > 50).length} of ${samples.length} windows (${samples.filter((s) => s.minutes >= warmupMinutes(minutes) && s.lagP99 > 50).length} after the warm-up).`,
    `Create-to-deliver p99 per window (reported, no budget; a delivery in flight during a sample's forced GC waits for it): median ${percentile(samples.map((s) => s.load.p99).filter(Number.isFinite), 50).toFixed(1)} ms, max ${Math.max(...samples.map((s) => s.load.p99).filter(Number.isFinite)).toFixed(1)} ms.`,
    `Samples every ${everyMs / 1000} s (${samples.length}); slopes and verdicts over the samples after the warm-up (${warmupMinutes(minutes).toFixed(1)} min); heap is V8 heap used after a forced full GC${gc ? "" : " (not forced: no --expose-gc)"}; fds are /proc/self/fd of the server process (it holds the server side of every socket); db is pg_stat_activity rows with the pool's application_name; lag is the p99 of monitorEventLoopDelay (10 ms resolution) per sample window.`,
    describeMachine(),
  ];
  process.stdout.write(`\n${table}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`);
  if (!values["no-write"]) {
    appendResults(`npm run soak (${minutes} min)`, `DATABASE_URL=... ${process.env.REDIS_URL ? "REDIS_URL=... " : ""}npm run soak -- --minutes ${minutes}`, table, notes);
  }
  if (failed || totals.failures > 0 || leftOpen.length > 0) process.exitCode = 1;
}

function askChild(child: ChildProcess): <T>(message: unknown) => Promise<T> {
  const queue: ((m: unknown) => void)[] = [];
  child.on("message", (m) => queue.shift()?.(m));
  return <T>(message: unknown) =>
    new Promise<T>((resolve) => {
      queue.push(resolve as (m: unknown) => void);
      child.send(message as never);
    });
}

const warmupMinutes = (minutes: number) => Math.min(5, minutes / 4);

/** Least-squares slope of y over x (x in minutes), per hour. */
function slopePerHour(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? Number.NaN : (sxy / sxx) * 60;
}

interface Figure {
  name: string;
  unit: string;
  value(s: Sample): number;
  budget: string;
  pass(after: number[], slope: number): boolean;
}

const FIGURES: Figure[] = [
  { name: "heap used (after GC)", unit: "MB", value: (s) => s.heapMB, budget: "slope < 5 MB/h", pass: (_v, slope) => slope < 5 },
  { name: "external memory (after GC)", unit: "MB", value: (s) => s.externalMB, budget: "(reported)", pass: () => true },
  // RSS also holds allocator and socket-buffer pages the process keeps for reuse: a looser bound.
  { name: "RSS", unit: "MB", value: (s) => s.rssMB, budget: "slope < 10 MB/h", pass: (_v, slope) => slope < 10 },
  // Reconnects in flight at the sampling instant move the count by a few.
  { name: "open file descriptors", unit: "", value: (s) => s.fds, budget: "|slope| < 10/h, range <= 20", pass: (v, slope) => Math.abs(slope) < 10 && Math.max(...v) - Math.min(...v) <= 20 },
  { name: "database connections", unit: "", value: (s) => s.db, budget: `slope < 2/h, max <= ${POOL_SIZE}`, pass: (v, slope) => slope < 2 && Math.max(...v) <= POOL_SIZE },
  {
    name: "event-loop lag p99",
    unit: "ms",
    value: (s) => s.lagP99,
    budget: ">= 95% of windows <= 50 ms",
    pass: (v) => v.filter((x) => x <= 50).length >= 0.95 * v.length,
  },
  { name: "machine load average (1 min)", unit: "", value: (s) => s.load1, budget: "(reported)", pass: () => true },
];

function judge(samples: Sample[], minutes: number): { table: string; failed: boolean } {
  const after = samples.filter((s) => s.minutes >= warmupMinutes(minutes));
  const fmt = (x: number, unit: string) => (Number.isFinite(x) ? `${Number.isInteger(x) ? String(x) : x.toFixed(1)}${unit ? ` ${unit}` : ""}` : "-");
  let failed = false;
  const rows = FIGURES.map((f) => {
    const all = samples.map(f.value);
    const v = after.map(f.value);
    const slope = slopePerHour(after.map((s) => [s.minutes, f.value(s)]));
    const ok = v.length >= 2 && f.pass(v, slope);
    failed ||= !ok;
    const per = f.unit ? `${f.unit}/h` : "/h";
    return [f.name, fmt(all[0]!, f.unit), fmt(all.at(-1)!, f.unit), fmt(Math.min(...all), f.unit), fmt(Math.max(...all), f.unit), `${fmt(slope, "")} ${per}`, f.budget, ok ? "yes" : "no"];
  });
  const header = ["figure", "first", "last", "min", "max", "slope after warm-up", "budget", "met"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return { table: [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n"), failed };
}

// ------------------------------------------------------------------ load side

async function loadRole(): Promise<void> {
  const plan = await new Promise<LoadPlan>((resolve) => process.once("message", (m: { plan: LoadPlan }) => resolve(m.plan)));
  const url = new URL(plan.baseUrl);
  const wsBase = plan.baseUrl.replace(/^http/, "ws");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const ttl = plan.minutes * 60 + 3600;
  const adminToken = await mintToken(SECRET, { sub: "soak-admin", role: "admin", expiresIn: ttl });
  const tokens = await Promise.all(plan.users.map((u) => mintToken(SECRET, { sub: u, expiresIn: ttl })));
  const online = plan.users.slice(0, plan.online);

  let win = fresh();
  const totals = { created: 0, delivered: 0, failures: 0, statuses: {} as Record<string, number> };
  let latencies: number[] = [];
  function fresh() {
    return { created: 0, statuses: {} as Record<string, number>, delivered: 0, reads: 0, reconnects: 0, broadcasts: 0, failures: 0 };
  }
  const count = (status: number) => {
    win.statuses[status] = (win.statuses[status] ?? 0) + 1;
    totals.statuses[status] = (totals.statuses[status] ?? 0) + 1;
    if (status === 0 || status >= 500) {
      win.failures++;
      totals.failures++;
    }
  };

  function request(method: string, p: string, token: string, body?: unknown): Promise<{ status: number; body: { notifications?: Note[] } | undefined }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve) => {
      const req = http.request(
        {
          hostname: url.hostname,
          port: url.port,
          path: p,
          method,
          agent,
          headers: { authorization: `Bearer ${token}`, ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            count(status);
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch {
              parsed = undefined;
            }
            resolve({ status, body: parsed as { notifications?: Note[] } | undefined });
          });
        },
      );
      req.on("error", () => {
        count(0);
        resolve({ status: 0, body: undefined });
      });
      req.end(payload);
    });
  }

  // Online users: one socket each, acking what arrives, resuming from the highest seq seen.
  interface Client {
    ws?: WebSocket;
    cursor: number;
  }
  const clients: Client[] = online.map(() => ({ cursor: 0 }));
  let stopping = false;
  function open(i: number): Promise<void> {
    const c = clients[i]!;
    return new Promise((resolve) => {
      const ws = new WebSocket(`${wsBase}/ws?token=${tokens[i]}${c.cursor ? `&cursor=${c.cursor}` : ""}`, { perMessageDeflate: false });
      c.ws = ws;
      ws.on("message", (raw) => {
        const m = JSON.parse(raw.toString()) as { type: string; notification?: Note; notifications?: Note[] };
        const list = m.type === "notification" && m.notification ? [m.notification] : m.type === "sync" ? (m.notifications ?? []) : [];
        if (list.length === 0) return;
        const t = Date.now();
        for (const n of list) {
          win.delivered++;
          totals.delivered++;
          c.cursor = Math.max(c.cursor, n.seq);
          if (m.type === "notification" && typeof n.data?.t === "number") latencies.push(t - n.data.t);
        }
        // The server takes at most 1,000 ids per ack.
        for (let k = 0; k < list.length; k += 1000) ws.send(JSON.stringify({ type: "ack", ids: list.slice(k, k + 1000).map((x) => x.id) }));
      });
      ws.once("open", () => resolve());
      ws.once("error", () => resolve());
      ws.once("close", () => {
        // A close we did not ask for (server restart, ping timeout): come back.
        if (!stopping && c.ws === ws) setTimeout(() => void open(i), 500);
      });
    });
  }
  interface Note {
    id: string;
    seq: number;
    read?: boolean;
    data?: { t?: number } | null;
  }
  for (let i = 0; i < clients.length; i += 50) await Promise.all(clients.slice(i, i + 50).map((_, j) => open(i + j)));

  const timers: NodeJS.Timeout[] = [];
  let inFlight = 0;
  let n = 0;
  // Creations at a fixed rate (open loop; at most 64 in flight so a stall does not pile up).
  timers.push(
    setInterval(() => {
      if (inFlight >= 64) return;
      inFlight++;
      const userId = plan.users[Math.floor(Math.random() * plan.users.length)]!;
      void request("POST", "/api/notifications", adminToken, { userId, type: "new_message", title: `Soak ${n++}`, message: "x".repeat(120), data: { t: Date.now() } }).then((r) => {
        inFlight--;
        if (r.status === 201) {
          win.created++;
          totals.created++;
        }
      });
    }, 1000 / plan.rate),
  );
  // Reads and marks: a user lists their inbox and marks one unread notification read.
  timers.push(
    setInterval(() => {
      const i = Math.floor(Math.random() * online.length);
      void request("GET", "/api/notifications?limit=20", tokens[i]!).then(async (r) => {
        win.reads++;
        const unread = r.body?.notifications?.find((x) => !x.read);
        if (unread) await request("PATCH", `/api/notifications/${unread.id}`, tokens[i]!, { read: true });
      });
    }, 500),
  );
  timers.push(setInterval(() => void request("POST", "/api/notifications/read-all", tokens[Math.floor(Math.random() * online.length)]!), 10_000));
  // One reconnect a second: the socket dropped as by a network failure, reopened with the cursor.
  timers.push(
    setInterval(() => {
      const i = Math.floor(Math.random() * clients.length);
      const c = clients[i]!;
      const old = c.ws;
      c.ws = undefined;
      old?.terminate();
      win.reconnects++;
      setTimeout(() => void open(i), 200);
    }, 1000),
  );
  timers.push(
    setInterval(() => {
      win.broadcasts++;
      void request("POST", "/api/notifications/broadcast", adminToken, { type: "system", title: "Soak broadcast", message: "to everyone" });
    }, 120_000),
  );

  process.on("message", async (m: { cmd: string }) => {
    if (m.cmd === "window") {
      const connected = clients.filter((c) => c.ws?.readyState === WebSocket.OPEN).length;
      process.send!({ ...win, p50: percentile(latencies, 50), p99: percentile(latencies, 99), connected } satisfies LoadWindow);
      win = fresh();
      latencies = [];
    } else if (m.cmd === "stop") {
      stopping = true;
      timers.forEach(clearInterval);
      await Promise.all(
        clients.map(
          (c) =>
            new Promise<void>((r) => {
              if (!c.ws || c.ws.readyState === WebSocket.CLOSED) r();
              else {
                c.ws.once("close", () => r());
                c.ws.close();
              }
            }),
        ),
      );
      agent.destroy();
      process.send!(totals, () => process.exit(0));
    }
  });
  process.send!({ ready: true });
}

// Last, so every declaration above is initialised before either role runs.
if (values.role === "load") await loadRole();
else await serverRole();
