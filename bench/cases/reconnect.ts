/**
 * Offline backlog drain (users x 20 queued, all connect) against a bare `ws`
 * server doing a raw SELECT by user then one send; and a reconnect storm
 * (every client drops and reconnects at once) against bare `ws` connects.
 */
import pg from "pg";
import { startBareServer } from "../lib/baselines.js";
import { type BenchOptions, requirePostgres, seedUsers, startBenchHerald, wsUrlsFor } from "../lib/context.js";
import { LoadGenerator } from "../lib/loadgen.js";
import type { CaseResult } from "../lib/report.js";
import { median } from "../lib/stats.js";

const PER_USER = 20;

async function queueBacklog(query: (sql: string, params: unknown[]) => Promise<unknown>, table: string, prefix: string, users: number) {
  await query(
    `INSERT INTO ${table} (user_id, type, priority, title, message, data)
     SELECT $1 || (g % $2), 'new_message', 'high', 'Queued ' || g, repeat('q', 120), '{}'::jsonb FROM generate_series(0, $2 * ${PER_USER} - 1) g`,
    [prefix, users],
  );
}

export async function reconnectCases(o: BenchOptions): Promise<CaseResult[]> {
  const userCount = o.quick ? 1000 : 5000;
  const total = userCount * PER_USER;
  const h = await startBenchHerald();
  const pool = new pg.Pool({ connectionString: requirePostgres(), max: 10 });
  const [{ s: schema }] = (await h.database.query<{ s: string }>("SELECT current_schema() AS s")) as [{ s: string }];
  const users = await seedUsers(h, userCount, "bl-");
  const urls = await wsUrlsFor(h, users);
  // In Herald's own (per-run) schema, so concurrent runs never share it.
  const backlog = `"${schema}".bench_backlog`;
  await pool.query(`CREATE TABLE IF NOT EXISTS ${backlog} (LIKE "${schema}".notifications INCLUDING ALL)`);
  // Baseline: raw SELECT by user then one send of the rows, as a sync frame.
  const bare = await startBareServer({
    onConnect: (ws, userId) => {
      void pool
        .query(`SELECT id, user_id, type, priority, title, message, data, created_at FROM ${backlog} WHERE user_id = $1 ORDER BY seq`, [userId])
        .then((r) => ws.send(JSON.stringify({ type: "sync", notifications: r.rows, cursor: 0 })));
    },
  });
  const bareUrls = users.map((u) => `ws://${bare.url}/?user=${u}`);
  const drain: number[] = [];
  const drainBase: number[] = [];
  const storm: number[] = [];
  const stormBase: number[] = [];
  const errors: string[] = [];
  let saturated = false;
  try {
    // Warm-up, not measured: the first connects compile both servers' code paths.
    const WARM = Math.min(200, userCount);
    await queueBacklog((q, p) => h.database.query(q, p), "notifications", "bl-", WARM);
    await queueBacklog((q, p) => pool.query(q, p), backlog, "bl-", WARM);
    for (const [list, ack] of [[urls, true], [bareUrls, false]] as const) {
      const warm = await LoadGenerator.start(2);
      await warm.connect(list.slice(0, WARM), ack);
      await warm.until((x) => x.distinct >= WARM * PER_USER, 60_000);
      await warm.close();
    }
    await pool.query(`TRUNCATE ${backlog}`);
    for (let r = 0; r < o.rounds; r++) {
      // Herald: backlog queued while offline, then everyone connects.
      await h.database.query("TRUNCATE notifications", []);
      await queueBacklog((q, p) => h.database.query(q, p), "notifications", "bl-", userCount);
      let gen = await LoadGenerator.start(2);
      let t0 = performance.now();
      await gen.connect(urls, true);
      let s = await gen.until((x) => x.distinct >= total, 120_000);
      drain.push((s.distinct / (performance.now() - t0)) * 1000);
      if (s.distinct < total) errors.push(`round ${r}: backlog drain delivered ${s.distinct} of ${total}`);
      saturated ||= s.utilization > 0.95;

      // Storm: one new notification each while everyone is away, then all reconnect.
      await gen.drop();
      await gen.reset();
      await h.database.query(
        "INSERT INTO notifications (user_id, type, priority, title, message) SELECT id, 'new_message', 'high', 'While away', 'x' FROM users WHERE id LIKE 'bl-%'",
        [],
      );
      t0 = performance.now();
      await gen.reconnect();
      s = await gen.until((x) => x.syncs >= userCount && x.distinct >= userCount, 120_000);
      storm.push(performance.now() - t0);
      if (s.distinct < userCount) errors.push(`round ${r}: storm resumed ${s.distinct} of ${userCount} users' missed notifications`);
      await gen.close();

      // Baselines.
      await pool.query(`TRUNCATE ${backlog}`);
      await queueBacklog((q, p) => pool.query(q, p), backlog, "bl-", userCount);
      gen = await LoadGenerator.start(2);
      t0 = performance.now();
      await gen.connect(bareUrls, false);
      s = await gen.until((x) => x.distinct >= total, 120_000);
      drainBase.push((s.distinct / (performance.now() - t0)) * 1000);
      await gen.drop();
      await pool.query(`TRUNCATE ${backlog}`);
      await gen.reset();
      t0 = performance.now();
      await gen.reconnect();
      await gen.until((x) => x.syncs >= userCount, 120_000);
      stormBase.push(performance.now() - t0);
      await gen.close();
    }
    const drainRatio = median(drainBase.map((b, i) => b / drain[i]!)); // time ratio = inverse throughput ratio
    const stormRatio = median(storm.map((x, i) => x / stormBase[i]!));
    return [
      { name: `offline backlog drain (${userCount} users x ${PER_USER})`, unit: "notif/s", herald: drain, baseline: drainBase, baselineName: "raw SELECT by user then send", higherIsBetter: true, goal: "time <= 1.5x (ratio >= 0.67)", goalMet: drainRatio <= 1.5, saturated, errors },
      { name: `reconnect storm (${userCount} clients)`, unit: "ms", herald: storm, baseline: stormBase, baselineName: "bare ws connects", higherIsBetter: false, goal: "<= 3x", goalMet: stormRatio <= 3, saturated, errors: [] },
    ];
  } finally {
    await bare.close();
    await pool.query(`DROP TABLE IF EXISTS ${backlog}`);
    await pool.end();
    await h.stop();
  }
}
