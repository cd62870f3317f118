/**
 * REST create to a connected user: throughput and p50/p99 create-to-deliver
 * latency with 1,000 users online, on PostgreSQL and on the embedded default
 * (PGlite in process), against relays measured in the same rounds: the
 * durable relay (group commit: one multi-row INSERT per commit, 201 after it,
 * then push; bench/lib/baselines.ts) on the same database, which the goals
 * are set against; the bare HTTP+ws relay (no database); and on PostgreSQL
 * the single-row INSERT ... RETURNING relay.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { type BareServer, benchRelayTable, pgliteRelayDb, poolRelayDb, startBareServer } from "../lib/baselines.js";
import type { TestHerald } from "../../test/support/herald.js";
import { type BenchOptions, requirePostgres, seedUsers, startBenchHerald, startEmbeddedHerald, wsUrlsFor } from "../lib/context.js";
import { httpLoad } from "../lib/http-load.js";
import { LoadGenerator } from "../lib/loadgen.js";
import type { CaseResult } from "../lib/report.js";
import { type CpuCost, cpuSince, cpuSnapshot, profiled } from "../lib/resources.js";
import { type SmtpSink, startSmtpSink } from "../lib/smtp-sink.js";
import { percentile } from "../lib/stats.js";

const CONCURRENCY = 32;
/** Connections of an open-load round: enough that the server, not the generator, holds any backlog. */
const OPEN_CONNECTIONS = 256;
/** Length of an open-load round (the p99 at a goal's throughput). */
const OPEN_ROUND_SECONDS = { quick: 2, full: 5 };

function bodies(users: string[], count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ userId: users[i % users.length], type: "new_message", title: `Message ${i}`, message: "x".repeat(120), data: { t: "{{t}}" } }),
  );
}

interface Round {
  throughput: number;
  p50: number;
  p99: number;
  lost: number;
  saturated: boolean;
  errors: number;
  /** CPU spent in the round (from the first request to the last delivery) by the servers' thread, PostgreSQL and Redis. */
  cpu: CpuCost;
  /** Requests answered 2xx. */
  ok: number;
}

/**
 * One round: `count` creations, CONCURRENCY in flight (closed load: the
 * server sets the pace), or with `ratePerSecond` sent at that rate whatever
 * the answers (open load, up to OPEN_CONNECTIONS at once), each latency
 * counted from its due time.
 */
export async function drive(url: string, headers: Record<string, string>, gen: LoadGenerator, users: string[], count: number, ratePerSecond?: number): Promise<Round> {
  await gen.reset();
  // Two load threads, so the generator is not the limit for the bare relay.
  const all = bodies(users, count);
  const halves = [all.filter((_, i) => i % 2 === 0), all.filter((_, i) => i % 2 === 1)];
  const started = performance.now();
  const cpuAtStart = cpuSnapshot();
  const parts = await Promise.all(
    halves.map((b) =>
      httpLoad(ratePerSecond ? { url, headers, bodies: b, concurrency: OPEN_CONNECTIONS / 2, ratePerSecond: ratePerSecond / 2 } : { url, headers, bodies: b, concurrency: CONCURRENCY / 2 }),
    ),
  );
  const load = {
    statuses: parts.reduce<Record<string, number>>((acc, p) => {
      for (const [k, v] of Object.entries(p.statuses)) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {}),
    // Open load: from the first due send to the last answer (the load threads' own clocks, without their start-up).
    elapsedMs: ratePerSecond ? Math.max(...parts.map((p) => p.elapsedMs)) : performance.now() - started,
    utilization: Math.max(...parts.map((p) => p.utilization)),
  };
  const ok = Object.entries(load.statuses).filter(([s]) => s.startsWith("2")).reduce((n, [, c]) => n + c, 0);
  const stats = await gen.waitFor(ok, 30_000);
  const cpu = cpuSince(cpuAtStart);
  return {
    cpu,
    ok,
    throughput: (ok / load.elapsedMs) * 1000,
    p50: percentile(stats.latencies, 50),
    p99: percentile(stats.latencies, 99),
    lost: ok - stats.distinct,
    saturated: load.utilization > 0.95 || stats.utilization > 0.95,
    errors: count - ok,
  };
}

/** "main / postgres / redis ms per creation, busy %" over a side's rounds (medians). */
function cpuPerCreation(rounds: Round[]): string {
  const per = (f: (c: CpuCost) => number) => percentile(rounds.map((r) => f(r.cpu) / Math.max(1, r.ok)), 50);
  const ms = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(3));
  const n = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(2));
  return `${ms(per((c) => c.mainMs))} / ${ms(per((c) => c.postgresMs))} / ${ms(per((c) => c.redisMs))} ms, busy ${(percentile(rounds.map((r) => r.cpu.mainBusy), 50) * 100).toFixed(0)}%, main-thread writes ${n(per((c) => c.mainWrites))}, reads ${n(per((c) => c.mainReads))} and preemptions ${n(per((c) => c.mainPreempted))} per creation, the busiest other threads ${[0, 1, 2]
    .map((k) => ms(per((c) => c.otherThreadsMs[k] ?? 0)))
    .join(" / ")} ms`;
}

interface Side {
  url: string;
  headers: Record<string, string>;
  /** Herald with jobs (BENCH_C2D_JOBS=on): called after each of its rounds, waits until every e-mail queued so far is sent (ms waited, kept in `settled`). */
  settle?: () => Promise<number>;
  settled?: number[];
}

/** A side's round, then, for Herald with jobs, the wait for its e-mail to drain (so no other side's round shares the main thread with the worker). */
async function driveSide(side: Side, gen: LoadGenerator, users: string[], count: number, ratePerSecond?: number): Promise<Round> {
  const round = await drive(side.url, side.headers, gen, users, count, ratePerSecond);
  if (side.settle) side.settled?.push(await side.settle());
  return round;
}

/**
 * A goal's latency half ("p99 <= X ms at that throughput"): Herald and its
 * durable relay, alternating, each offered `rate` creations/s in open load.
 */
async function atRate(o: BenchOptions, gen: LoadGenerator, users: string[], rate: number, herald: Side, relay: Side): Promise<{ herald: Round[]; relay: Round[] }> {
  const count = Math.max(2, Math.round(rate * (o.quick ? OPEN_ROUND_SECONDS.quick : OPEN_ROUND_SECONDS.full)));
  const out = { herald: [] as Round[], relay: [] as Round[] };
  // --quick (CI's smoke) checks the path with one round a side; the full run measures three.
  for (let r = 0; r < (o.quick ? 1 : o.rounds); r++) {
    out.herald.push(await driveSide(herald, gen, users, count, rate));
    out.relay.push(await driveSide(relay, gen, users, count, rate));
  }
  return out;
}

/** Kept up with the offered rate: every round answered and delivered at >= 97% of it. */
const keptUp = (rounds: Round[], rate: number) => rounds.every((r) => r.throughput >= 0.97 * rate && r.lost === 0 && r.errors === 0);

/** The rows of an open-load measurement: the p99 against the goal, then the throughput achieved. */
function rateRows(label: string, rate: number, goalMs: number, at: { herald: Round[]; relay: Round[] }, relayName: string): CaseResult[] {
  const p99 = percentile(at.herald.map((r) => r.p99), 50);
  const kept = keptUp(at.herald, rate);
  const offered = `${Math.round(rate).toLocaleString("en-US")}/s offered`;
  return [
    {
      name: `create-to-deliver p99 at the goal's throughput, ${label} (${offered})`,
      unit: "ms",
      herald: at.herald.map((r) => r.p99),
      baseline: at.relay.map((r) => r.p99),
      baselineName: `${relayName}, same rate`,
      higherIsBetter: false,
      goal: `p99 <= ${goalMs} ms, keeping up`,
      goalMet: kept && p99 <= goalMs,
      saturated: at.herald.some((r) => r.saturated),
      errors: at.herald.flatMap((r, i) => [...(r.errors ? [`open-load round ${i}: ${r.errors} HTTP errors`] : []), ...(r.lost ? [`open-load round ${i}: ${r.lost} created but not delivered`] : [])]),
      // The median hides how the rounds differ: a server near its limit has good and bad rounds.
      note: `${label} at ${offered}, Herald's rounds: p99 ${at.herald.map((r) => `${r.p99.toFixed(0)} ms`).join(", ")}; achieved ${at.herald.map((r) => `${Math.round(r.throughput)}/s`).join(", ")}.`,
    },
    {
      name: "  same, p50 latency",
      unit: "ms",
      herald: at.herald.map((r) => r.p50),
      baseline: at.relay.map((r) => r.p50),
      baselineName: `${relayName}, same rate`,
      higherIsBetter: false,
      goal: "(reported)",
      saturated: false,
      errors: [],
    },
    {
      name: `  same, creations/s achieved (${offered})`,
      unit: "req/s",
      herald: at.herald.map((r) => r.throughput),
      baseline: at.relay.map((r) => r.throughput),
      baselineName: `${relayName}, same rate`,
      higherIsBetter: true,
      goal: "(reported)",
      saturated: false,
      errors: [],
    },
  ];
}

/** BENCH_C2D_LITE_RATE's creations/s, if set; a value that is not a positive number stops the run (not a silent default). */
function fixedRate(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const rate = Number(value);
  if (!(rate > 0)) throw new Error(`BENCH_C2D_LITE_RATE must be a positive number of creations/s (got "${value}")`);
  return rate;
}

/**
 * BENCH_C2D_JOBS=on: each Herald runs its jobs, so the delivery worker claims
 * and sends the e-mail every creation queues (new_message is high priority:
 * e-mailed at once, docs/delivery.md) to a loopback SMTP sink, as in
 * production. Unset, Herald runs without jobs: the e-mail rows are written
 * and never sent, and the worker's cost is in no figure.
 */
async function heraldJobs(): Promise<{ sink: SmtpSink; options: { jobs: true; env: Record<string, string> } } | undefined> {
  if (process.env.BENCH_C2D_JOBS !== "on") return undefined;
  const sink = await startSmtpSink();
  return { sink, options: { jobs: true, env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(sink.port), EMAIL_SECURE: "false" } } };
}

/** A Herald side's `settle`, when it runs its jobs: polls its queue until no send is pending or in flight. */
function emailSettle(h: TestHerald, jobs: Awaited<ReturnType<typeof heraldJobs>>): Pick<Side, "settle" | "settled"> {
  if (!jobs) return {};
  return {
    settled: [],
    async settle() {
      const started = performance.now();
      for (;;) {
        const [open] = await h.database.query<{ n: number }>("SELECT count(*)::int AS n FROM notification_queue WHERE status IN ('pending', 'processing')");
        if (open!.n === 0) return performance.now() - started;
        if (performance.now() - started > 300_000) throw new Error(`${open!.n} e-mails still queued 5 minutes after the round`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/**
 * What the note says about e-mail: not sent at all, or, with jobs, the
 * throughput of creations each e-mailed: a round's creations over the round
 * plus the wait until the last of their e-mails was sent.
 */
function emailNote(sides: { label: string; jobs: Awaited<ReturnType<typeof heraldJobs>>; rounds: Round[]; open: Round[]; side: Side }[]): string {
  if (!sides[0]?.jobs) return "Herald runs without its jobs: the e-mail row each creation queues (high priority, due now) is written and never sent (BENCH_C2D_JOBS=on runs the delivery worker against a loopback SMTP sink). ";
  const parts = sides.map(({ label, jobs, rounds, open, side }) => {
    const waits = side.settled ?? [];
    const created = [...rounds, ...open].reduce((n, r) => n + r.ok, 0);
    const sustained = rounds.map((r, i) => `${Math.round(r.ok / ((r.ok / r.throughput) * 1000 + (waits[i] ?? 0)) * 1000).toLocaleString("en-US")}/s (${Math.round(waits[i] ?? 0).toLocaleString("en-US")} ms after the round)`);
    return `${label}: ${jobs!.sink.accepted.toLocaleString("en-US")} e-mails accepted by the sink for ${created.toLocaleString("en-US")} creations answered (closed and open load); closed-load rounds, creations each e-mailed per second of round and drain: ${sustained.join(", ")}`;
  });
  return `Herald runs its jobs (BENCH_C2D_JOBS=on): the delivery worker e-mails each creation to a loopback SMTP sink, and after each Herald round the next round waits until all its e-mail is sent; ${parts.join("; ")}. `;
}

/**
 * BENCH_C2D_WAITS=on: what Herald's PostgreSQL backends are doing during its
 * closed-load rounds, sampled from pg_stat_activity every 10 ms by a client
 * of its own (its connections are named after the test schema): the share of
 * samples per state and wait event ("active, on CPU" when active with no wait).
 */
function waitSampler(schema: string | undefined): { start(): void; stop(): void; report(): string } | undefined {
  if (process.env.BENCH_C2D_WAITS !== "on" || !schema) return undefined;
  const counts = new Map<string, number>();
  const client = new pg.Client({ connectionString: requirePostgres() });
  const connected = client.connect();
  let timer: NodeJS.Timeout | undefined;
  let inFlight = false;
  const sample = async () => {
    if (inFlight) return;
    inFlight = true;
    try {
      await connected;
      const { rows } = await client.query<{ k: string }>(
        `SELECT state || COALESCE(', ' || wait_event_type || ':' || wait_event, CASE WHEN state = 'active' THEN ', on CPU' ELSE '' END) AS k
           FROM pg_stat_activity WHERE application_name = $1`,
        [schema],
      );
      for (const { k } of rows) counts.set(k, (counts.get(k) ?? 0) + 1);
    } finally {
      inFlight = false;
    }
  };
  return {
    start() {
      timer = setInterval(() => void sample(), 10);
    },
    stop() {
      clearInterval(timer);
    },
    report() {
      void connected.then(() => client.end());
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const shares = [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${((n / total) * 100).toFixed(1)}%`);
      return `Herald's PostgreSQL backends during its closed-load rounds (BENCH_C2D_WAITS=on: pg_stat_activity every 10 ms, ${total.toLocaleString("en-US")} backend samples): ${shares.join("; ")}. `;
    },
  };
}

/**
 * How far the analytics rollups trail the events while Herald runs its
 * closed-load rounds: every 50 ms, now minus the roll-up worker's `asOf`
 * (every event committed before it is counted; the dashboard shows it).
 * README states the bound: the worker's 1 s interval plus one pass.
 */
function freshnessSampler(h: TestHerald): { start(): void; stop(): void; report(label: string): string } {
  const lags: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  return {
    start() {
      timer = setInterval(() => {
        const asOf = h.herald.runtime.analytics.rollups.asOf;
        if (asOf) lags.push(Date.now() - asOf.getTime());
      }, 50);
    },
    stop() {
      clearInterval(timer);
    },
    report(label) {
      if (lags.length === 0) return `${label}: no roll-up finished during the rounds`;
      return `${label} p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms, max ${Math.max(...lags).toFixed(0)} ms (${lags.length} samples)`;
    },
  };
}

/**
 * BENCH_C2D_EMBEDDED=only runs the embedded sides alone (embedded Herald, the
 * durable relay on PGlite and the bare relay), without PostgreSQL;
 * BENCH_C2D_LITE_RATE=N offers N creations/s in its open-load rounds instead
 * of a quarter of the bare relay's throughput.
 */
export async function createToDeliver(o: BenchOptions): Promise<CaseResult[]> {
  if (process.env.BENCH_C2D_EMBEDDED === "only") return embeddedOnly(o);
  const userCount = 1000;
  const count = o.quick ? 2000 : 10_000;
  const pgJobs = await heraldJobs();
  const liteJobs = await heraldJobs();
  const h = await startBenchHerald(pgJobs?.options);
  const embedded = await startEmbeddedHerald(liteJobs?.options);
  const pool = new pg.Pool({ connectionString: requirePostgres(), max: 10 });
  const tag = `${process.pid}_${Date.now().toString(36)}`;
  const rowTable = `bench_relay_${tag}`;
  const groupTable = `bench_relay_gc_${tag}`;
  await pool.query(benchRelayTable(rowTable));
  await pool.query(benchRelayTable(groupTable));
  // The embedded baseline: its own PGlite, persisted in a directory like Herald's, in this process.
  const liteDir = mkdtempSync(path.join(tmpdir(), "herald-bench-relay-"));
  const lite = await PGlite.create(liteDir);
  await lite.exec(benchRelayTable("bench_relay"));
  const bare = await startBareServer({ relay: "bare" });
  const rowRelay = await startBareServer({ relay: "insert-returning", db: poolRelayDb(pool), table: rowTable });
  const durable = await startBareServer({ relay: "group-commit", db: poolRelayDb(pool), table: groupTable });
  const durableLite = await startBareServer({ relay: "group-commit", db: pgliteRelayDb(lite), table: "bench_relay" });
  const users = await seedUsers(h, userCount, "c2d-");
  await seedUsers(embedded, userCount, "c2d-");
  // One generator for every side (the same two threads receive for Herald and for each relay).
  const gen = await LoadGenerator.start(2);
  const relayUrls = (r: BareServer) => users.map((u) => `ws://${r.url}/?user=${u}`);
  try {
    await gen.connect(await wsUrlsFor(h, users));
    await gen.connect(await wsUrlsFor(embedded, users));
    for (const r of [bare, rowRelay, durable, durableLite]) await gen.connect(relayUrls(r), false);
    const heraldHeaders = { authorization: "Bearer test-api-key" };
    const sides = {
      herald: { url: `${h.baseUrl}/api/notifications`, headers: heraldHeaders, rounds: [] as Round[], ...emailSettle(h, pgJobs) },
      durable: { url: `http://${durable.url}/`, headers: {}, rounds: [] as Round[] },
      row: { url: `http://${rowRelay.url}/`, headers: {}, rounds: [] as Round[] },
      bare: { url: `http://${bare.url}/`, headers: {}, rounds: [] as Round[] },
      embedded: { url: `${embedded.baseUrl}/api/notifications`, headers: heraldHeaders, rounds: [] as Round[], ...emailSettle(embedded, liteJobs) },
      durableLite: { url: `http://${durableLite.url}/`, headers: {}, rounds: [] as Round[] },
    };
    const waits = waitSampler(h.database.schema);
    const freshness = { herald: freshnessSampler(h), embedded: freshnessSampler(embedded) };
    for (let r = 0; r < o.rounds; r++) {
      for (const [name, side] of Object.entries(sides)) {
        if (name === "herald") waits?.start();
        if (name === "herald" || name === "embedded") freshness[name].start();
        side.rounds.push(await profiled(`create-to-deliver-${name}-r${r}`, () => driveSide(side, gen, users, count)));
        if (name === "herald" || name === "embedded") freshness[name].stop();
        if (name === "herald") waits?.stop();
      }
    }
    const errors = Object.entries(sides).flatMap(([name, side]) =>
      side.rounds.flatMap((r, i) => [
        ...(r.errors ? [`${name} round ${i}: ${r.errors} HTTP errors`] : []),
        ...(r.lost ? [`${name} round ${i}: ${r.lost} created but not delivered`] : []),
      ]),
    );
    const { herald, durable: gc, row, bare: relay, embedded: lh, durableLite: lgc } = Object.fromEntries(Object.entries(sides).map(([k, v]) => [k, v.rounds])) as Record<keyof typeof sides, Round[]>;
    const med = (xs: number[]) => percentile(xs, 50);
    const tput = (rs: Round[]) => rs.map((r) => r.throughput);
    const ratio = (a: Round[], b: Round[]) => med(a.map((x, i) => x.throughput / b[i]!.throughput));
    // The goals' latency halves, at the throughput each goal names (open load: Herald and its durable relay offered the same rate).
    const pgRate = 0.8 * med(tput(gc));
    const liteRate = 0.25 * med(tput(relay));
    const pgAt = await atRate(o, gen, users, pgRate, sides.herald, sides.durable);
    const liteAt = await atRate(o, gen, users, liteRate, sides.embedded, sides.durableLite);
    const pgSaturated = [...herald, ...gc, ...row, ...relay].some((r) => r.saturated);
    const liteSaturated = [...lh, ...lgc, ...relay].some((r) => r.saturated);
    const perCommit = (b: BareServer) => (b.batches.count ? (b.batches.rows / b.batches.count).toFixed(1) : "-");
    const note =
      `${CONCURRENCY} requests in flight from 2 HTTP load threads (started per round), deliveries counted by one generator of 2 threads holding every side's ${userCount.toLocaleString("en-US")} clients; ` +
      `each server runs on this process's main thread (PostgreSQL in its own processes), but embedded Herald's PGlite, which runs in its worker thread (the default; the durable relay's PGlite stays on the main thread). ` +
      `Herald on PostgreSQL uses the ${process.env.REDIS_URL ? "Redis bus (REDIS_URL is set: each creation is also published to Redis and its echo dropped)" : "in-memory bus"}; embedded Herald: PGlite in a directory, in-memory bus. ` +
      `Durable relay rows per commit: ${perCommit(durable)} on PostgreSQL (largest ${durable.batches.largest}), ${perCommit(durableLite)} on PGlite (largest ${durableLite.batches.largest}). ` +
      `Relay tables: id, user_id, title, message, data, created_at, primary key only. ` +
      `CPU per creation, median of the rounds (the servers' main thread / PostgreSQL's processes / Redis; main thread busy share of the round; the main thread's write and read system calls and nonvoluntary context switches; this process's three busiest other threads: the load generators and embedded Herald's PGlite thread): ${Object.entries(sides)
        .map(([name, side]) => `${name} ${cpuPerCreation(side.rounds)}`)
        .join("; ")}. ${emailNote([
      { label: "PostgreSQL", jobs: pgJobs, rounds: herald, open: pgAt.herald, side: sides.herald },
      { label: "embedded", jobs: liteJobs, rounds: lh, open: liteAt.herald, side: sides.embedded },
    ])}${waits?.report() ?? ""}` +
      `Analytics rollups behind the events during Herald's closed-load rounds (now minus the roll-up's asOf, every 50 ms; README's bound: its 1 s interval plus a pass): ${freshness.herald.report("PostgreSQL")}; ${freshness.embedded.report("embedded")}.`;
    const base = { unit: "req/s", higherIsBetter: true };
    return [
      { ...base, name: "create-to-deliver throughput, PostgreSQL (1,000 users)", herald: tput(herald), baseline: tput(gc), baselineName: "durable relay (group commit)", goal: ">= 0.8", goalMet: ratio(herald, gc) >= 0.8, saturated: pgSaturated, errors, note },
      { name: `  same, p99 latency at that throughput (${CONCURRENCY} in flight)`, unit: "ms", herald: herald.map((r) => r.p99), baseline: gc.map((r) => r.p99), baselineName: "durable relay (group commit)", higherIsBetter: false, goal: "(reported)", saturated: pgSaturated, errors: [] },
      { name: "  same, p50 latency", unit: "ms", herald: herald.map((r) => r.p50), baseline: gc.map((r) => r.p50), baselineName: "durable relay (group commit)", higherIsBetter: false, goal: "(reported)", saturated: pgSaturated, errors: [] },
      { ...base, name: "  same throughput, against the bare relay", herald: tput(herald), baseline: tput(relay), baselineName: "bare HTTP+ws relay", goal: "(reported)", saturated: pgSaturated, errors: [] },
      { ...base, name: "  same throughput, against single-row INSERT", herald: tput(herald), baseline: tput(row), baselineName: "pg INSERT..RETURNING relay", goal: "(reported)", saturated: pgSaturated, errors: [] },
      { ...base, name: "  durable relay against the bare relay", herald: tput(gc), baseline: tput(relay), baselineName: "bare HTTP+ws relay", goal: "(reported)", saturated: pgSaturated, errors: [] },
      ...rateRows("PostgreSQL", pgRate, 50, pgAt, "durable relay"),
      { ...base, name: "create-to-deliver throughput, embedded PGlite", herald: tput(lh), baseline: tput(relay), baselineName: "bare HTTP+ws relay", goal: ">= 0.25", goalMet: ratio(lh, relay) >= 0.25, saturated: liteSaturated, errors: [] },
      { name: `  same, p99 latency at that throughput (${CONCURRENCY} in flight)`, unit: "ms", herald: lh.map((r) => r.p99), baseline: lgc.map((r) => r.p99), baselineName: "durable relay on PGlite", higherIsBetter: false, goal: "(reported)", saturated: liteSaturated, errors: [] },
      { ...base, name: "  same throughput, against a durable relay on PGlite", herald: tput(lh), baseline: tput(lgc), baselineName: "durable relay on PGlite", goal: "(reported)", saturated: liteSaturated, errors: [] },
      ...rateRows("embedded PGlite", liteRate, 100, liteAt, "durable relay on PGlite"),
    ];
  } finally {
    await gen.close();
    for (const r of [bare, rowRelay, durable, durableLite]) await r.close();
    await pool.query(`DROP TABLE IF EXISTS ${rowTable}, ${groupTable}`);
    await pool.end();
    await lite.close();
    rmSync(liteDir, { recursive: true, force: true });
    await embedded.stop();
    await h.stop();
    await pgJobs?.sink.close();
    await liteJobs?.sink.close();
  }
}

/** The embedded rows of createToDeliver() alone: embedded Herald, the durable relay on PGlite and the bare relay. */
async function embeddedOnly(o: BenchOptions): Promise<CaseResult[]> {
  const users = Array.from({ length: 1000 }, (_, i) => `c2d-${i}`);
  const count = o.quick ? 2000 : 10_000;
  const liteJobs = await heraldJobs();
  const embedded = await startEmbeddedHerald(liteJobs?.options);
  const liteDir = mkdtempSync(path.join(tmpdir(), "herald-bench-relay-"));
  const lite = await PGlite.create(liteDir);
  await lite.exec(benchRelayTable("bench_relay"));
  const bare = await startBareServer({ relay: "bare" });
  const durableLite = await startBareServer({ relay: "group-commit", db: pgliteRelayDb(lite), table: "bench_relay" });
  await seedUsers(embedded, users.length, "c2d-");
  const gen = await LoadGenerator.start(2);
  try {
    await gen.connect(await wsUrlsFor(embedded, users));
    for (const r of [bare, durableLite]) await gen.connect(users.map((u) => `ws://${r.url}/?user=${u}`), false);
    const sides = {
      bare: { url: `http://${bare.url}/`, headers: {}, rounds: [] as Round[] },
      embedded: { url: `${embedded.baseUrl}/api/notifications`, headers: { authorization: "Bearer test-api-key" }, rounds: [] as Round[], ...emailSettle(embedded, liteJobs) },
      durableLite: { url: `http://${durableLite.url}/`, headers: {}, rounds: [] as Round[] },
    };
    for (let r = 0; r < o.rounds; r++) {
      for (const [name, side] of Object.entries(sides)) side.rounds.push(await profiled(`create-to-deliver-${name}-r${r}`, () => driveSide(side, gen, users, count)));
    }
    const errors = Object.entries(sides).flatMap(([name, side]) => side.rounds.flatMap((r, i) => [...(r.errors ? [`${name} round ${i}: ${r.errors} HTTP errors`] : []), ...(r.lost ? [`${name} round ${i}: ${r.lost} created but not delivered`] : [])]));
    const { bare: relay, embedded: lh, durableLite: lgc } = { bare: sides.bare.rounds, embedded: sides.embedded.rounds, durableLite: sides.durableLite.rounds };
    const saturated = [...lh, ...lgc, ...relay].some((r) => r.saturated);
    const ratio = percentile(lh.map((x, i) => x.throughput / relay[i]!.throughput), 50);
    // BENCH_C2D_LITE_RATE fixes the offered rate, for A/B runs whose bare relays differ.
    const liteRate = fixedRate(process.env.BENCH_C2D_LITE_RATE) ?? 0.25 * percentile(relay.map((r) => r.throughput), 50);
    const liteAt = await atRate(o, gen, users, liteRate, sides.embedded, sides.durableLite);
    const note = `embedded sides only (BENCH_C2D_EMBEDDED=only); p50 ms ${lh.map((r) => r.p50.toFixed(1)).join(", ")}; CPU per creation: ${Object.entries(sides)
      .map(([name, side]) => `${name} ${cpuPerCreation(side.rounds)}`)
      .join("; ")}. ${emailNote([{ label: "embedded", jobs: liteJobs, rounds: lh, open: liteAt.herald, side: sides.embedded }])}`;
    const base = { unit: "req/s", higherIsBetter: true };
    return [
      { ...base, name: "create-to-deliver throughput, embedded PGlite", herald: lh.map((r) => r.throughput), baseline: relay.map((r) => r.throughput), baselineName: "bare HTTP+ws relay", goal: ">= 0.25", goalMet: ratio >= 0.25, saturated, errors, note },
      { name: `  same, p99 latency at that throughput (${CONCURRENCY} in flight)`, unit: "ms", herald: lh.map((r) => r.p99), baseline: lgc.map((r) => r.p99), baselineName: "durable relay on PGlite", higherIsBetter: false, goal: "(reported)", saturated, errors: [] },
      { ...base, name: "  same throughput, against a durable relay on PGlite", herald: lh.map((r) => r.throughput), baseline: lgc.map((r) => r.throughput), baselineName: "durable relay on PGlite", goal: "(reported)", saturated, errors: [] },
      ...rateRows("embedded PGlite", liteRate, 100, liteAt, "durable relay on PGlite"),
    ];
  } finally {
    await gen.close();
    for (const r of [bare, durableLite]) await r.close();
    await lite.close();
    rmSync(liteDir, { recursive: true, force: true });
    await embedded.stop();
    await liteJobs?.sink.close();
  }
}
