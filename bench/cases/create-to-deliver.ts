/**
 * REST create to a connected user: throughput and p50/p99 create-to-deliver
 * latency with 1,000 users online, against a bare HTTP+ws relay (no
 * database) and a raw-`pg` relay (INSERT ... RETURNING then send).
 */
import pg from "pg";
import { benchRelayTable, startBareServer } from "../lib/baselines.js";
import { type BenchOptions, requirePostgres, seedUsers, startBenchHerald, wsUrlsFor } from "../lib/context.js";
import { httpLoad } from "../lib/http-load.js";
import { LoadGenerator } from "../lib/loadgen.js";
import type { CaseResult } from "../lib/report.js";
import { percentile } from "../lib/stats.js";

const CONCURRENCY = 32;

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
}

export async function drive(url: string, headers: Record<string, string>, gen: LoadGenerator, users: string[], count: number): Promise<Round> {
  await gen.reset();
  // Two load threads, so the generator is not the limit for the bare relay.
  const all = bodies(users, count);
  const halves = [all.filter((_, i) => i % 2 === 0), all.filter((_, i) => i % 2 === 1)];
  const started = performance.now();
  const parts = await Promise.all(halves.map((b) => httpLoad({ url, headers, bodies: b, concurrency: CONCURRENCY / 2 })));
  const load = {
    statuses: parts.reduce<Record<string, number>>((acc, p) => {
      for (const [k, v] of Object.entries(p.statuses)) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {}),
    elapsedMs: performance.now() - started,
    utilization: Math.max(...parts.map((p) => p.utilization)),
  };
  const ok = Object.entries(load.statuses).filter(([s]) => s.startsWith("2")).reduce((n, [, c]) => n + c, 0);
  const stats = await gen.waitFor(ok, 30_000);
  return {
    throughput: (ok / load.elapsedMs) * 1000,
    p50: percentile(stats.latencies, 50),
    p99: percentile(stats.latencies, 99),
    lost: ok - stats.distinct,
    saturated: load.utilization > 0.95 || stats.utilization > 0.95,
    errors: count - ok,
  };
}

export async function createToDeliver(o: BenchOptions): Promise<CaseResult[]> {
  const userCount = 1000;
  const count = o.quick ? 2000 : 10_000;
  const h = await startBenchHerald();
  const pool = new pg.Pool({ connectionString: requirePostgres(), max: 10 });
  const table = `bench_relay_${process.pid}_${Date.now().toString(36)}`;
  await pool.query(benchRelayTable(table));
  const relay = await startBareServer({ relay: true });
  const pgRelay = await startBareServer({ relay: true, pool, table });
  const users = await seedUsers(h, userCount, "c2d-");
  const heraldGen = await LoadGenerator.start(2);
  const relayGen = await LoadGenerator.start(1);
  const pgGen = await LoadGenerator.start(1);
  try {
    await heraldGen.connect(await wsUrlsFor(h, users));
    await relayGen.connect(users.map((u) => `ws://${relay.url}/?user=${u}`), false);
    await pgGen.connect(users.map((u) => `ws://${pgRelay.url}/?user=${u}`), false);
    const herald: Round[] = [];
    const bare: Round[] = [];
    const raw: Round[] = [];
    for (let r = 0; r < o.rounds; r++) {
      herald.push(await drive(`${h.baseUrl}/api/notifications`, { authorization: "Bearer test-api-key" }, heraldGen, users, count));
      bare.push(await drive(`http://${relay.url}/`, {}, relayGen, users, count));
      raw.push(await drive(`http://${pgRelay.url}/`, {}, pgGen, users, count));
    }
    const errors = herald.flatMap((r, i) => [
      ...(r.errors ? [`round ${i}: ${r.errors} HTTP errors`] : []),
      ...(r.lost ? [`round ${i}: ${r.lost} created but not delivered`] : []),
    ]);
    const saturated = [...herald, ...bare, ...raw].some((r) => r.saturated);
    const med = (xs: number[]) => percentile(xs, 50);
    const tputRatio = med(herald.map((r, i) => r.throughput / bare[i]!.throughput));
    const p99 = med(herald.map((r) => r.p99));
    const p99RawRatio = med(herald.map((r, i) => r.p99 / raw[i]!.p99));
    return [
      { name: "create-to-deliver throughput (1,000 users)", unit: "req/s", herald: herald.map((r) => r.throughput), baseline: bare.map((r) => r.throughput), baselineName: "bare HTTP+ws relay", higherIsBetter: true, goal: ">= 0.5", goalMet: tputRatio >= 0.5, saturated, errors },
      { name: "create-to-deliver throughput vs raw pg relay", unit: "req/s", herald: herald.map((r) => r.throughput), baseline: raw.map((r) => r.throughput), baselineName: "pg INSERT..RETURNING relay", higherIsBetter: true, goal: "(reported)", saturated, errors: [] },
      { name: "create-to-deliver p50 latency", unit: "ms", herald: herald.map((r) => r.p50), baseline: raw.map((r) => r.p50), baselineName: "pg INSERT..RETURNING relay", higherIsBetter: false, goal: "(reported)", saturated, errors: [] },
      { name: "create-to-deliver p99 latency", unit: "ms", herald: herald.map((r) => r.p99), baseline: raw.map((r) => r.p99), baselineName: "pg INSERT..RETURNING relay", higherIsBetter: false, goal: "<= 2x and <= 50 ms", goalMet: p99RawRatio <= 2 && p99 <= 50, saturated, errors: [] },
    ];
  } finally {
    await Promise.all([heraldGen.close(), relayGen.close(), pgGen.close()]);
    await relay.close();
    await pgRelay.close();
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await h.stop();
  }
}
