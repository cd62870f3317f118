/**
 * Notifications persisted per second with the recipients offline, through
 * NotificationService, against raw `pg` single-row INSERTs at the same
 * concurrency; multi-row INSERT and COPY-like unnest are reported as ceilings.
 */
import pg from "pg";
import { type BenchOptions, requirePostgres, seedUsers, startBenchHerald } from "../lib/context.js";
import type { CaseResult } from "../lib/report.js";

const CONCURRENCY = 16;

async function lanes(count: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return (count / (performance.now() - t0)) * 1000;
}

export async function persistOffline(o: BenchOptions): Promise<CaseResult[]> {
  const count = o.quick ? 2000 : 20_000;
  const h = await startBenchHerald();
  const users = await seedUsers(h, 1000, "off-");
  const pool = new pg.Pool({ connectionString: requirePostgres(), max: CONCURRENCY });
  // Same columns, defaults and indexes as Herald's table, so the comparison is fair.
  // In Herald's own (per-run) schema, so concurrent runs never share it.
  const heraldTable = await schemaQualified(h);
  const table = heraldTable.replace(/\.notifications$/, ".bench_offline");
  await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (LIKE ${heraldTable} INCLUDING ALL)`);
  const service = h.herald.notifications;
  const herald: number[] = [];
  const single: number[] = [];
  const multi: number[] = [];
  const ceiling: number[] = [];
  const errors: string[] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      herald.push(
        await lanes(count, (i) =>
          service.createAndSendNotification({ userId: users[i % users.length]!, type: "booking_request", title: `Booking ${i}`, message: "m".repeat(120) }),
        ),
      );
      single.push(
        await lanes(count, (i) =>
          pool.query(
            `INSERT INTO ${table} (user_id, type, priority, title, message) VALUES ($1, 'booking_request', 'high', $2, $3) RETURNING *`,
            [users[i % users.length], `Booking ${i}`, "m".repeat(120)],
          ),
        ),
      );
      const batch = 1000;
      // lanes() returns calls per second; each call writes `batch` rows.
      multi.push(
        batch *
        (await lanes(count / batch, (b) => {
          const values: string[] = [];
          const params: unknown[] = [];
          for (let j = 0; j < batch; j++) {
            params.push(users[(b * batch + j) % users.length], `Booking ${j}`);
            values.push(`($${params.length - 1}, 'booking_request', 'high', $${params.length}, 'm')`);
          }
          return pool.query(`INSERT INTO ${table} (user_id, type, priority, title, message) VALUES ${values.join(",")}`, params);
        })),
      );
      const t0 = performance.now();
      await pool.query(
        `INSERT INTO ${table} (user_id, type, priority, title, message) SELECT u, 'booking_request', 'high', 'Booking', 'm' FROM unnest($1::text[]) u`,
        [Array.from({ length: count }, (_, i) => users[i % users.length])],
      );
      ceiling.push((count / (performance.now() - t0)) * 1000);
    }
    const stored = await h.database.query<{ n: string }>("SELECT count(*)::text AS n FROM notifications");
    if (Number(stored[0]!.n) !== count * o.rounds) errors.push(`stored ${stored[0]!.n} of ${count * o.rounds}`);
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratio = med(herald.map((x, i) => x / single[i]!));
    return [
      { name: "notifications persisted/s, recipients offline", unit: "/s", herald, baseline: single, baselineName: `pg single-row INSERT x${CONCURRENCY}`, higherIsBetter: true, goal: ">= 0.8", goalMet: ratio >= 0.8, saturated: false, errors },
      { name: "  same, against multi-row INSERT (batch 1,000)", unit: "/s", herald, baseline: multi, baselineName: "pg multi-row INSERT", higherIsBetter: true, goal: "(reported)", saturated: false, errors: [] },
      { name: "  same, against one unnest INSERT (COPY-like ceiling)", unit: "/s", herald, baseline: ceiling, baselineName: "INSERT ... SELECT unnest", higherIsBetter: true, goal: "(reported)", saturated: false, errors: [] },
    ];
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await h.stop();
  }
}

/** The test schema's notifications table, qualified, so the baseline table has the same shape and indexes. */
async function schemaQualified(h: { database: { query: <T>(s: string) => Promise<T[]> } }): Promise<string> {
  const [row] = await h.database.query<{ s: string }>("SELECT current_schema() AS s");
  return `"${row!.s}".notifications`;
}
