/**
 * Offline backlog drain (users x 20 queued, all connect) against a bare `ws`
 * server doing a raw SELECT by user then one send; and a reconnect storm
 * (every client drops and reconnects at once) against bare `ws` connects.
 *
 * Both sides do the same job for the same clients: Herald's clients name their
 * device as the SDK does (`?device=`, so device cursors are read and written);
 * the baseline selects the same rows (the user's undelivered, by the same
 * partial index) with the wire's columns, sends the unread count and the page,
 * and records each page's ack with one UPDATE (delivered), as Herald must; the
 * clients of both ack each page in one message. The load generator's
 * utilisation is checked in every measured drain, Herald's and the baseline's.
 * With BENCH_CPU_PROFILE=<dir>, each measured drain writes a V8 CPU profile of
 * this process's main thread (where both servers run): drain-herald-r<n> and
 * drain-baseline-r<n>.
 */
import pg from "pg";
import { NOTIFICATION_COLUMNS } from "../../src/db/index.js";
import { startBareServer } from "../lib/baselines.js";
import { type BenchOptions, requirePostgres, seedUsers, startBenchHerald, wsUrlsFor } from "../lib/context.js";
import { LoadGenerator } from "../lib/loadgen.js";
import type { CaseResult } from "../lib/report.js";
import { type CpuCost, cpuSince, cpuSnapshot, profiled } from "../lib/resources.js";
import { median } from "../lib/stats.js";

const PER_USER = 20;

async function queueBacklog(query: (sql: string, params: unknown[]) => Promise<unknown>, table: string, prefix: string, users: number) {
  await query(
    `INSERT INTO ${table} (user_id, type, priority, title, message, data)
     SELECT $1 || (g % $2), 'new_message', 'high', 'Queued ' || g, repeat('q', 120), '{}'::jsonb FROM generate_series(0, $2 * ${PER_USER} - 1) g`,
    [prefix, users],
  );
}

/** "main / postgres / redis ms per user, busy %" over the drains (medians). */
function perUser(costs: CpuCost[], users: number): string {
  const med = (f: (c: CpuCost) => number) => median(costs.map(f));
  const ms = (x: number) => (Number.isNaN(x) ? "-" : (x / users).toFixed(3));
  return `${ms(med((c) => c.mainMs))} / ${ms(med((c) => c.postgresMs))} / ${ms(med((c) => c.redisMs))} ms, busy ${(med((c) => c.mainBusy) * 100).toFixed(0)}%`;
}

export async function reconnectCases(o: BenchOptions): Promise<CaseResult[]> {
  const userCount = o.quick ? 1000 : 5000;
  const total = userCount * PER_USER;
  const h = await startBenchHerald();
  const pool = new pg.Pool({ connectionString: requirePostgres(), max: 10 });
  const [{ s: schema }] = (await h.database.query<{ s: string }>("SELECT current_schema() AS s")) as [{ s: string }];
  const users = await seedUsers(h, userCount, "bl-");
  // A device id per client, as the SDK sends (its per-device cursor: delivery rule 4).
  const urls = (await wsUrlsFor(h, users)).map((u, i) => `${u}&device=dev-${users[i]}`);
  const errors: string[] = [];
  // In Herald's own (per-run) schema, so concurrent runs never share it.
  const backlog = `"${schema}".bench_backlog`;
  await pool.query(`CREATE TABLE IF NOT EXISTS ${backlog} (LIKE "${schema}".notifications INCLUDING ALL)`);
  // Baseline: raw SELECT of the user's undelivered rows then one send of them, as a sync frame
  // (the wire's columns). Acks are recorded the cheapest durable way: the acks that arrive while
  // one UPDATE is in flight are marked delivered together by the next (an UPDATE per ack message
  // commits, and waits for its WAL flush, a thousand times).
  const select = `SELECT ${NOTIFICATION_COLUMNS} FROM ${backlog} WHERE user_id = $1 AND delivery_status IN ('pending', 'sent') ORDER BY seq`;
  const markDelivered = `UPDATE ${backlog} b SET delivery_status = 'delivered', delivered_at = now(), sent_at = COALESCE(sent_at, now()), updated_at = now()
    FROM unnest($1::uuid[], $2::text[]) AS a(id, user_id) WHERE b.id = a.id AND b.user_id = a.user_id AND b.delivery_status IN ('pending', 'sent')`;
  let acked: [string, string][] = [];
  let writing = false;
  const writeAcks = async () => {
    while (acked.length > 0) {
      const batch = acked;
      acked = [];
      await pool.query(markDelivered, [batch.map(([id]) => id), batch.map(([, user]) => user)]).catch((err: unknown) => errors.push(`baseline ack write: ${err}`));
    }
    writing = false;
  };
  const bare = await startBareServer({
    onConnect: (ws, userId) => {
      ws.on("message", (raw) => {
        const m = JSON.parse(raw.toString()) as { type: string; ids?: string[]; id?: string };
        if (m.type !== "ack") return;
        for (const id of m.ids ?? [m.id!]) acked.push([id, userId]);
        if (!writing) {
          writing = true;
          setImmediate(writeAcks);
        }
      });
      void pool.query(select, [userId]).then((r) => {
        ws.send(JSON.stringify({ type: "unread_count", count: r.rows.length }));
        const notifications = r.rows.map((n: { seq: string }) => ({ ...n, seq: Number(n.seq) }));
        ws.send(JSON.stringify({ type: "sync", notifications, cursor: notifications.at(-1)?.seq ?? 0 }));
      });
    },
  });
  const bareUrls = users.map((u) => `ws://${bare.url}/?user=${u}`);
  const drain: number[] = [];
  const drainBase: number[] = [];
  const storm: number[] = [];
  const stormBase: number[] = [];
  let saturated = false;
  // Peak event-loop utilisation of the load generator's threads in each measured drain.
  const genLoad = { herald: 0, baseline: 0 };
  // CPU of each measured drain: the servers' main thread, PostgreSQL, Redis.
  const drainCpu: CpuCost[] = [];
  const drainCpuBase: CpuCost[] = [];
  try {
    // Warm-up, not measured: the first connects compile both servers' code paths.
    const WARM = Math.min(200, userCount);
    await queueBacklog((q, p) => h.database.query(q, p), "notifications", "bl-", WARM);
    await queueBacklog((q, p) => pool.query(q, p), backlog, "bl-", WARM);
    for (const list of [urls, bareUrls]) {
      const warm = await LoadGenerator.start(2);
      await warm.connect(list.slice(0, WARM), true);
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
      let cpu = cpuSnapshot();
      let s = await profiled(`drain-herald-r${r}`, async () => {
        await gen.connect(urls, true);
        return gen.until((x) => x.distinct >= total, 120_000);
      });
      drainCpu.push(cpuSince(cpu));
      drain.push((s.distinct / (performance.now() - t0)) * 1000);
      if (s.distinct < total) errors.push(`round ${r}: backlog drain delivered ${s.distinct} of ${total}`);
      saturated ||= s.utilization > 0.95;
      genLoad.herald = Math.max(genLoad.herald, s.utilization);

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
      cpu = cpuSnapshot();
      s = await profiled(`drain-baseline-r${r}`, async () => {
        await gen.connect(bareUrls, true);
        return gen.until((x) => x.distinct >= total, 120_000);
      });
      drainCpuBase.push(cpuSince(cpu));
      drainBase.push((s.distinct / (performance.now() - t0)) * 1000);
      saturated ||= s.utilization > 0.95;
      genLoad.baseline = Math.max(genLoad.baseline, s.utilization);
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
      { name: `offline backlog drain (${userCount} users x ${PER_USER})`, unit: "notif/s", herald: drain, baseline: drainBase, baselineName: "raw SELECT by user then send", higherIsBetter: true, goal: "time <= 1.5x (ratio >= 0.67)", goalMet: drainRatio <= 1.5, saturated, errors, note: `load generator's peak thread utilisation ${genLoad.herald.toFixed(2)} (Herald), ${genLoad.baseline.toFixed(2)} (baseline); CPU ms per user drained, median (servers' main thread / PostgreSQL / Redis; main thread busy share): Herald ${perUser(drainCpu, userCount)}, baseline ${perUser(drainCpuBase, userCount)}` },
      { name: `reconnect storm (${userCount} clients)`, unit: "ms", herald: storm, baseline: stormBase, baselineName: "bare ws connects", higherIsBetter: false, goal: "<= 3x", goalMet: stormRatio <= 3, saturated, errors: [] },
    ];
  } finally {
    await bare.close();
    await pool.query(`DROP TABLE IF EXISTS ${backlog}`);
    await pool.end();
    await h.stop();
  }
}
