/**
 * `node --import tsx bench/analytics.ts [--events 10000000] [--ingest 500000] [--samples 40] [--no-write]`
 *
 * Analytics at scale on real PostgreSQL (DATABASE_URL), in a dedicated
 * schema dropped at the end:
 * 1. Ingest: AnalyticsIngest (batches of 1,000, one INSERT each, its roll-up
 *    worker running beside it on its 1 s timer as in production) against a
 *    raw multi-row `pg` INSERT of 1,000 rows per statement into
 *    analytics_events, same events, three alternating rounds of a third
 *    each. The Herald figure is events until the last flush is written; the
 *    rollups' catch-up after it (the lag a reader would see) is reported
 *    beside it, and each round checks that the rollups count every event.
 * 2. Bulk load of N events (INSERT ... SELECT generate_series, on two
 *    connections, indexes built after the load) over N/4 notifications of
 *    10,000 users across 90 days, then rebuildRollups. At 10M events this
 *    takes about 3 minutes on the shared 2-core box (it was 12).
 * 3. p50/p99 latency of each metric query through AnalyticsService with the
 *    cache disabled (a cache that never hits), against the straightforward
 *    COUNT(DISTINCT) query on analytics_events it replaces.
 * Prints the table and appends it to bench/RESULTS.md.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { AnalyticsIngest, AnalyticsService, rebuildRollups } from "../src/analytics/index.js";
import type { Cache } from "../src/cache/index.js";
import { type Database, migrate, openDatabase, quoteIdent } from "../src/db/index.js";
import { systemClock, silentLogger } from "../src/observability/index.js";
import { appendResults } from "./lib/report.js";
import { describeMachine } from "./lib/machine.js";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "10000000" },
    ingest: { type: "string", default: "500000" },
    samples: { type: "string", default: "40" },
    "no-write": { type: "boolean" },
    keep: { type: "boolean" },
  },
});
const EVENTS = Number(values.events);
const INGEST = Number(values.ingest);
const SAMPLES = Number(values.samples);
const USERS = 10_000;
const NOTIFICATIONS = Math.ceil(EVENTS / 4);
const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const nid = (k: number | string) => `md5('n' || ${k})::uuid`;

const schema = `bench_analytics_${randomBytes(4).toString("hex")}`;
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
let db: Database | undefined;

/** A cache that never hits: the latencies below are the database path. */
const noCache: Cache = { get: async () => undefined, set: async () => {}, delete: async () => {}, setMany: async () => {}, deleteMany: async () => {}, deletePrefix: async () => {} };

try {
  db = await openDatabase({ url, schema, poolSize: 4 });
  await migrate(db);
  const database = db;
  /**
   * One loading statement in its own transaction with the memory for its sorts
   * and index builds (this session only). synchronous_commit is off for it:
   * the load commits a few large transactions, so it saves little, but nothing
   * measured later depends on those commits being flushed.
   */
  const bulk = async (sql: string, params?: unknown[]) => {
    await database.transaction(async (tx) => {
      await tx.query("SET LOCAL work_mem = '1GB'");
      await tx.query("SET LOCAL maintenance_work_mem = '1GB'");
      await tx.query("SET LOCAL synchronous_commit = off");
      await tx.query("SET LOCAL statement_timeout = 0");
      await tx.query(sql, params);
    });
  };
  /** Runs the chunks [from, to] of 1..n on two connections at once (two cores; the generator is CPU-bound). */
  const chunked = async (n: number, size: number, load: (from: number, to: number) => Promise<void>) => {
    let next = 1;
    const lane = async () => {
      while (next <= n) {
        const from = next;
        next += size;
        await load(from, Math.min(n, from + size - 1));
      }
    };
    await Promise.all([lane(), lane()]);
  };

  /**
   * Bulk loads run with every index of the table dropped (constraint ones
   * included: the notifications key is a random uuid), then rebuilt from their
   * own definitions: one sort per index instead of millions of random B-tree
   * insertions. The tables stay logged, like Herald's.
   */
  const withoutIndexes = async (table: string, load: () => Promise<void>) => {
    const constraints = await database.query<{ name: string; def: string }>(
      `SELECT c.conname AS name, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
       WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u') ORDER BY c.contype, c.conname`,
      [table],
    );
    const indexes = await database.query<{ name: string; def: string }>(
      `SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
       WHERE i.schemaname = $1 AND i.tablename = $2
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = $1::regnamespace)`,
      [schema, table],
    );
    for (const d of indexes) await database.query(`DROP INDEX ${quoteIdent(d.name)}`);
    for (const c of constraints) await database.query(`ALTER TABLE ${quoteIdent(table)} DROP CONSTRAINT ${quoteIdent(c.name)}`);
    await load();
    for (const c of constraints) await bulk(`ALTER TABLE ${quoteIdent(table)} ADD CONSTRAINT ${quoteIdent(c.name)} ${c.def}`);
    for (const d of indexes) await bulk(d.def);
  };

  // ---- notifications: 1 in 5 belongs to one of 500 broadcasts ------------
  log(`loading ${NOTIFICATIONS.toLocaleString()} notifications`);
  let t0 = process.hrtime.bigint();
  await withoutIndexes("notifications", () =>
    chunked(NOTIFICATIONS, 250_000, (from, to) =>
      bulk(
        `INSERT INTO notifications (id, user_id, type, priority, title, message, broadcast_id, delivery_status, created_at)
         SELECT ${nid("k")}, 'user-' || (abs(hashint8(k)) % ${USERS}),
                (ARRAY['new_message','booking_request','booking_confirmed','payment_received','platform_update','security_alert'])[1 + abs(hashint8(k + 7)) % 6],
                'normal', 'Notification ' || (k % 1000), 'body',
                CASE WHEN k % 5 = 0 THEN md5('b' || ((k / 5) % 500))::uuid END, 'delivered',
                now() - make_interval(secs => (${NOTIFICATIONS} - k)::float8 / ${NOTIFICATIONS} * 90 * 86400)
         FROM generate_series($1::bigint, $2::bigint) k`,
        [from, to],
      ),
    ),
  );
  const notificationsMs = ms(t0);

  // ---- 1. ingest throughput ------------------------------------------------
  const ingestEvent = (i: number) => {
    const k = 1 + (i % NOTIFICATIONS);
    return { k, type: (["sent", "delivered", "opened", "clicked"] as const)[i % 4]! };
  };
  const truncate = () =>
    database.query("TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats, analytics_channel_firsts, analytics_channel_rollup");
  const ids = await database.query<{ id: string; user_id: string }>(
    `SELECT ${nid("k")}::text AS id, 'user-' || (abs(hashint8(k)) % ${USERS}) AS user_id FROM generate_series(1, $1::bigint) k`,
    [Math.min(NOTIFICATIONS, Math.ceil(INGEST / 4))],
  );

  // Three alternating rounds (raw, then Herald) of INGEST / 3 events each, on emptied tables, so both
  // sides see the same load drift; the figure is the median round.
  const rawIngest = async (count: number) => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < count; i += 1000) {
      const n = Math.min(1000, count - i);
      const params: unknown[] = [];
      const rows: string[] = [];
      for (let j = 0; j < n; j++) {
        const e = ingestEvent(i + j);
        const row = ids[(e.k - 1) % ids.length]!;
        const p = params.length;
        rows.push(`($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5})`);
        params.push(row.id, row.user_id, e.type, new Date().toISOString(), JSON.stringify({ device: "mobile" }));
      }
      await database.query(`INSERT INTO analytics_events (notification_id, user_id, event_type, timestamp, metadata) VALUES ${rows.join(",")}`, params);
    }
    return (count / ms(t)) * 1000;
  };
  const newIngest = () => new AnalyticsIngest({ database, logger: silentLogger, batchSize: 1000, intervalMs: 200 });
  let ingest = newIngest();
  /** Per round: ms from the last flush's commit until the rollups had caught up. */
  const catchUpMs: number[] = [];
  /** Per round: events/s until the rollups had caught up (ingest + the catch-up after the last flush). */
  const endToEnd: number[] = [];
  const heraldIngest = async (count: number) => {
    ingest = newIngest();
    ingest.start(); // the ingest's timer and the roll-up worker's (1 s)
    const t = process.hrtime.bigint();
    for (let i = 0; i < count; i += 1000) {
      for (let j = i; j < Math.min(count, i + 1000); j++) {
        const e = ingestEvent(j);
        const row = ids[(e.k - 1) % ids.length]!;
        ingest.record({ notificationId: row.id, userId: row.user_id, eventType: e.type, metadata: { device: "mobile" } });
      }
      // Let the size-triggered flush run, as it would between requests; keep at most one batch waiting.
      while (ingest.pending >= 1000) await new Promise((r) => setImmediate(r));
    }
    await ingest.flush({ catchUp: false });
    const rate = (count / ms(t)) * 1000;
    const c = process.hrtime.bigint();
    await ingest.catchUp();
    catchUpMs.push(ms(c));
    endToEnd.push((count / ms(t)) * 1000);
    await ingest.stop();
    const [{ n: ingestedRows, rolled }] = (await database.query<{ n: number; rolled: number }>(
      "SELECT count(*)::int AS n, (SELECT COALESCE(sum(events), 0)::int FROM analytics_rollup) AS rolled FROM analytics_events",
    )) as [{ n: number; rolled: number }];
    if (ingestedRows !== count) throw new Error(`ingest lost events: ${ingestedRows} of ${count}`);
    if (rolled !== count) throw new Error(`rollups count ${rolled} events of ${count}`);
    return rate;
  };
  const INGEST_ROUNDS = 3;
  const perRound = Math.ceil(INGEST / INGEST_ROUNDS);
  const rawRates: number[] = [];
  const heraldRates: number[] = [];
  for (let r = 0; r < INGEST_ROUNDS; r++) {
    log(`ingest round ${r + 1}: raw multi-row INSERT, then AnalyticsIngest (batch 1,000), ${perRound.toLocaleString()} events each`);
    await truncate();
    rawRates.push(await rawIngest(perRound));
    await truncate();
    heraldRates.push(await heraldIngest(perRound));
  }
  await truncate();

  // ---- 2. bulk load ---------------------------------------------------------
  log(`bulk load of ${EVENTS.toLocaleString()} events`);
  t0 = process.hrtime.bigint();
  await withoutIndexes("analytics_events", () =>
    chunked(NOTIFICATIONS, 250_000, async (from, to) => {
      // Event g belongs to notification k = g/4 + 1, slot s = g%4: sent; delivered (or a retried sent);
      // opened / archived / a second-tab delivered; clicked / deleted / a repeat open. The notification's
      // id, user and time offset are computed once per notification (x), its four events from them.
      // Sends and deliveries name their channel (6 in 10 notifications in-app, 3 e-mail, 1 push), so the
      // per-channel figures (analytics_channel_firsts, analytics_channel_rollup) are read at this scale too.
      await bulk(
        `INSERT INTO analytics_events (notification_id, user_id, event_type, timestamp, metadata, channel)
         SELECT x.id, x.user_id, e.type,
                now() - make_interval(secs => x.off - s * 300),
                CASE WHEN s >= 2 THEN '{"device":"mobile","browser":"Chrome"}'::jsonb END,
                CASE WHEN e.type IN ('sent', 'delivered') THEN
                  CASE WHEN x.k % 10 < 6 THEN 'in_app' WHEN x.k % 10 < 9 THEN 'email' ELSE 'push' END END
         FROM (SELECT k, ${nid("k")} AS id, 'user-' || (abs(hashint8(k)) % ${USERS}) AS user_id,
                      (${NOTIFICATIONS} - k)::float8 / ${NOTIFICATIONS} * 90 * 86400 AS off
               FROM generate_series($1::bigint, $2::bigint) k OFFSET 0) x
         CROSS JOIN LATERAL generate_series(0, 3) s
         CROSS JOIN LATERAL (SELECT abs(hashint8(4 * (x.k - 1) + s)) % 1000 AS h) hh
         CROSS JOIN LATERAL (
           SELECT CASE s WHEN 0 THEN 'sent'
                         WHEN 1 THEN CASE WHEN h < 930 THEN 'delivered' ELSE 'sent' END
                         WHEN 2 THEN CASE WHEN h < 550 THEN 'opened' WHEN h < 800 THEN 'archived' ELSE 'delivered' END
                         ELSE CASE WHEN h < 200 THEN 'clicked' WHEN h < 350 THEN 'deleted' ELSE 'opened' END END AS type
         ) e
         WHERE 4 * (x.k - 1) + s < ${EVENTS}`,
        [from, to],
      );
      log(`  events of notifications ${from.toLocaleString()}-${to.toLocaleString()}`);
    }),
  );
  const loadMs = ms(t0);
  log("rebuilding rollups");
  t0 = process.hrtime.bigint();
  await rebuildRollups(database, { memory: "2GB" }); // the firsts sort of 10M events (~1.5 GB) stays in memory
  const rebuildMs = ms(t0);
  // Two at a time: vacuum is mostly I/O and hint-bit writes on tables of this size.
  t0 = process.hrtime.bigint();
  await Promise.all([
    database.query("VACUUM ANALYZE analytics_events"),
    (async () => {
      await database.query("VACUUM ANALYZE analytics_firsts");
      await database.query("VACUUM ANALYZE analytics_rollup");
      await database.query("VACUUM ANALYZE analytics_group_stats");
      await database.query("ANALYZE notifications");
    })(),
  ]);
  const vacuumMs = ms(t0);
  const sizes = await database.query<{ t: string; rows: number; size: string }>(
    `SELECT c.relname AS t, c.reltuples::bigint::float8 AS rows, pg_size_pretty(pg_total_relation_size(c.oid)) AS size
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname IN ('analytics_events', 'analytics_firsts', 'analytics_rollup', 'analytics_group_stats', 'notifications')`,
    [schema],
  );

  // ---- 3. query latencies ---------------------------------------------------
  const service = new AnalyticsService({ database, cache: noCache, clock: systemClock, logger: silentLogger, analytics: ingest });
  const randomK = () => 1 + Math.floor(Math.random() * NOTIFICATIONS);
  const randomUser = () => `user-${Math.floor(Math.random() * USERS)}`;
  const randomNotification = async () => (await database.query<{ id: string }>(`SELECT ${nid("$1::bigint")}::text AS id`, [randomK()]))[0]!.id;
  const since = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();

  interface Case {
    name: string;
    herald: () => Promise<unknown>;
    baseline: () => Promise<unknown>;
    baselineSamples: number;
  }
  const cases: Case[] = [
    {
      name: "getNotificationMetrics(id)",
      herald: async () => service.getNotificationMetrics(await randomNotification()),
      baseline: async () =>
        database.query("SELECT event_type, count(DISTINCT notification_id) FROM analytics_events WHERE notification_id = $1 GROUP BY 1", [await randomNotification()]),
      baselineSamples: SAMPLES,
    },
    {
      name: "getUserMetrics(user, 30)",
      herald: () => service.getUserMetrics(randomUser(), 30),
      baseline: () =>
        database.query("SELECT event_type, count(DISTINCT notification_id) FROM analytics_events WHERE user_id = $1 AND timestamp >= $2 GROUP BY 1", [randomUser(), since(30)]),
      baselineSamples: SAMPLES,
    },
    {
      name: "getMetricsByType(user, 30)",
      herald: () => service.getMetricsByType(randomUser(), 30),
      baseline: () =>
        database.query(
          `SELECT n.type, e.event_type, count(DISTINCT e.notification_id) FROM analytics_events e JOIN notifications n ON n.id = e.notification_id
           WHERE e.user_id = $1 AND e.timestamp >= $2 GROUP BY 1, 2`,
          [randomUser(), since(30)],
        ),
      baselineSamples: SAMPLES,
    },
    {
      name: "trends day, 30 d, America/New_York",
      herald: () => service.getTrends({ interval: "day", days: 30, timeZone: "America/New_York" }),
      baseline: () =>
        database.query(
          `SELECT date_trunc('day', timestamp AT TIME ZONE 'America/New_York'), event_type, count(DISTINCT notification_id)
           FROM analytics_events WHERE timestamp >= $1 GROUP BY 1, 2`,
          [since(30)],
        ),
      baselineSamples: 3,
    },
    {
      name: "trends month, 90 d, UTC",
      herald: () => service.getTrends({ interval: "month", days: 90, timeZone: "UTC" }),
      baseline: () =>
        database.query(
          `SELECT date_trunc('month', timestamp AT TIME ZONE 'UTC'), event_type, count(DISTINCT notification_id)
           FROM analytics_events WHERE timestamp >= $1 GROUP BY 1, 2`,
          [since(90)],
        ),
      baselineSamples: 3,
    },
    {
      name: "top 10 by open rate, minDelivered 100",
      herald: () => service.getTopNotifications({ by: "open", limit: 10, minDelivered: 100 }),
      baseline: () =>
        database.query(
          `SELECT COALESCE(n.broadcast_id, n.id) AS g,
                  count(DISTINCT e.notification_id) FILTER (WHERE e.event_type = 'delivered') AS d,
                  count(DISTINCT e.notification_id) FILTER (WHERE e.event_type = 'opened') AS o
           FROM analytics_events e JOIN notifications n ON n.id = e.notification_id
           GROUP BY 1 HAVING count(DISTINCT e.notification_id) FILTER (WHERE e.event_type = 'delivered') >= 100
           ORDER BY 3::float8 / 2 DESC LIMIT 10`,
        ),
      baselineSamples: 2,
    },
    {
      name: "overview, 30 d",
      herald: () => service.getOverview({ days: 30 }),
      baseline: () =>
        database.query(
          `SELECT event_type, count(DISTINCT notification_id), count(*) FROM analytics_events WHERE timestamp >= $1 AND timestamp <= now() GROUP BY 1`,
          [since(30)],
        ),
      baselineSamples: 3,
    },
    {
      name: "overview, all time",
      herald: () => service.getOverview({}),
      baseline: () => database.query("SELECT event_type, count(DISTINCT notification_id), count(*) FROM analytics_events GROUP BY 1"),
      baselineSamples: 2,
    },
  ];

  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
  };
  const rows: string[] = [];
  for (const c of cases) {
    log(`query: ${c.name}`);
    await c.herald(); // warm-up
    const h: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const t = process.hrtime.bigint();
      await c.herald();
      h.push(ms(t));
    }
    const b: number[] = [];
    for (let i = 0; i < c.baselineSamples; i++) {
      const t = process.hrtime.bigint();
      await c.baseline();
      b.push(ms(t));
    }
    const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
    rows.push(
      `| ${c.name} | ${f(pct(h, 50))} / ${f(pct(h, 99))} | ${f(pct(b, 50))} / ${f(pct(b, 99))} | ${(pct(h, 50) / pct(b, 50)).toFixed(4)} |`,
    );
    log(`  herald p50 ${f(pct(h, 50))} ms p99 ${f(pct(h, 99))} ms; baseline p50 ${f(pct(b, 50))} ms`);
  }

  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const round = (x: number) => Math.round(x).toLocaleString("en-US");
  /** "median (round 1, round 2, round 3)", the form bench/cases/standalone.ts reads back. */
  const rates = (xs: number[]) => `${round(median(xs))} (${xs.map(round).join(", ")})`;
  const table = [
    `| case | Herald | baseline | ratio (Herald / baseline) |`,
    `| --- | --- | --- | --- |`,
    `| ingest ${INGEST_ROUNDS} x ${perRound.toLocaleString("en-US")} events, alternating (events/s) | ${rates(heraldRates)} AnalyticsIngest, batch 1,000, one INSERT; roll-up worker running, rollups caught up ${catchUpMs.map((x) => x.toFixed(0)).join("/")} ms after the last flush | ${rates(rawRates)} multi-row pg INSERT, 1,000 rows, raw table only | ${(median(heraldRates) / median(rawRates)).toFixed(2)} (throughput) |`,
    `| **query latency at ${EVENTS.toLocaleString("en-US")} events, p50 / p99 ms** | AnalyticsService, cache off | COUNT(DISTINCT) on analytics_events | p50 ratio |`,
    ...rows,
  ].join("\n");
  const notes = [
    `Ingest until the rollups had caught up (the last flush, then a catch-up): ${rates(endToEnd)} events/s, ${(median(endToEnd) / median(rawRates)).toFixed(2)} of the raw INSERT; the roll-up worker also ran on its 1 s timer during the longer rounds.`,
    `Data: ${EVENTS.toLocaleString("en-US")} events over ${NOTIFICATIONS.toLocaleString("en-US")} notifications (1 in 5 in one of 500 broadcasts) of ${USERS.toLocaleString("en-US")} users across 90 days; bulk load ${(loadMs / 1000).toFixed(0)} s (notifications ${(notificationsMs / 1000).toFixed(0)} s), rollup rebuild ${(rebuildMs / 1000).toFixed(0)} s, VACUUM ANALYZE ${(vacuumMs / 1000).toFixed(0)} s.`,
    `Sizes: ${sizes.map((s) => `${s.t} ${Math.round(s.rows).toLocaleString("en-US")} rows ${s.size}`).join("; ")}.`,
    `Herald samples: ${SAMPLES} per query (random notification / user each time), after one warm-up; baseline samples: ${cases.map((c) => c.baselineSamples).join("/")}. The cache is disabled, so these are database round trips; with the cache a repeated read is one Redis GET.`,
    "Baselines are the straightforward queries on the raw table with the guide's indexes (what the rollups replace); they read the same time windows.",
    describeMachine(),
  ];
  process.stdout.write(`\n${table}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`);
  if (!values["no-write"]) {
    appendResults("bench/analytics.ts", `node --import tsx bench/analytics.ts --events ${EVENTS} --ingest ${INGEST} --samples ${SAMPLES}`, table, notes);
    log("appended to bench/RESULTS.md");
  }
} finally {
  await db?.close();
  if (values.keep) log(`kept schema ${schema}`);
  else await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  await admin.end();
}
