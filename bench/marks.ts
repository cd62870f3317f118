/**
 * `node --conditions=herald-source --import tsx bench/marks.ts [--engine pglite|postgres|both] [--rounds 6]
 *   [--per-round 4096] [--create-batch 16] [--mark-batch 64] [--fillfactor N] [--same-schema]`
 * (PostgreSQL: DATABASE_URL.)
 *
 * Write cost per notification of its creation INSERT and its delivered mark
 * (issue 17), without migration 0020 (every other shipped migration: the
 * marks change delivery_status, which notifications_undelivered_idx names, so
 * none is a HOT update) against with it (notifications_unacked, fillfactor 85;
 * --fillfactor sets another on this schema). The statements are Herald's own:
 * INSERT_NOTIFICATIONS with --create-batch rows of distinct users (a creation
 * group commit), and the delivery log's MARK_DELIVERED of --mark-batch acks
 * (DeliveryLog, analytics discarded), the marks trailing the creations by one
 * mark batch. Both schemas live side by side (two in-memory PGlite instances
 * in this thread, or two schemas of DATABASE_URL with one connection each)
 * over the same backlog (1,000 users x 20 delivered rows), and their
 * statements alternate one by one, so other load on the machine hits both.
 *
 * Printed per schema: CPU per notification, creation and mark apart (the
 * thread that runs the statements, from /proc/<pid>/task/<tid>/schedstat:
 * this main thread for PGlite, the schema's backend for PostgreSQL), WAL
 * bytes per notification (the insert position around each statement), the
 * share of marks that were HOT updates (pg_stat_user_tables) and the sizes at
 * the end; then the per-round ratios after / before, which move least with
 * the machine's other load. --same-schema gives both sides 0020 (an A/A run:
 * what it shows is bias). Writes nothing to bench/RESULTS.md.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { type Database, listMigrations, migrate, openDatabase, quoteIdent } from "../src/db/index.js";
import { INSERT_NOTIFICATIONS } from "../src/notifications/sql.js";
import { silentLogger, systemClock } from "../src/observability/index.js";
import { DeliveryLog } from "../src/realtime/delivery-log.js";

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "both" },
    rounds: { type: "string", default: "6" },
    "per-round": { type: "string", default: "4096" },
    "create-batch": { type: "string", default: "16" },
    "mark-batch": { type: "string", default: "64" },
    fillfactor: { type: "string" },
    // A/A calibration: both schemas are the "after" one (what the comparison reads as a difference is then bias).
    "same-schema": { type: "boolean" },
  },
});
const ROUNDS = Number(values.rounds);
const PER_ROUND = Number(values["per-round"]);
const USERS = 1_000;
const BACKLOG_PER_USER = 20;
const CREATE_BATCH = Number(values["create-batch"]);
const MARK_BATCH = Number(values["mark-batch"]);

/** The migration under test: the "before" schema has every shipped migration but this one. */
const UNDER_TEST = "0020_";

interface Variant {
  name: "before" | "after";
  db: Database;
  log: DeliveryLog;
  /** ids and users created and not yet marked, oldest first. */
  unmarked: Array<[string, string]>;
  /** CPU ns so far of the thread that runs this variant's statements. */
  cpuNs: () => number;
  rounds: Array<{ cpuUs: number; createUs: number; markUs: number; walBytes: number }>;
  hot: { upd: number; hot: number };
  drop(): Promise<void>;
}

function beforeDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-marks-"));
  const shipped = path.join(import.meta.dirname, "../src/db/migrations");
  for (const m of listMigrations()) if (!m.name.startsWith(UNDER_TEST)) copyFileSync(path.join(shipped, m.name), path.join(dir, m.name));
  return dir;
}

async function open(engine: "pglite" | "postgres", name: Variant["name"], dir: string): Promise<Variant> {
  let db: Database;
  let drop = async () => db.close();
  if (engine === "pglite") {
    db = await openDatabase({ pgliteThread: false });
  } else {
    const url = process.env.DATABASE_URL!;
    const schema = `bench_marks_${name}_${randomBytes(4).toString("hex")}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await admin.end();
    db = await openDatabase({ url, schema, poolSize: 1 });
    drop = async () => {
      await db.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
      await c.end();
    };
  }
  await migrate(db, name === "before" && !values["same-schema"] ? { dir } : {});
  // Another fillfactor than 0020's for the "after" schema (from the backlog on).
  if (name === "after" && values.fillfactor) await db.query(`ALTER TABLE notifications SET (fillfactor = ${Number(values.fillfactor)})`);
  // The backlog: every user's history, delivered.
  await db.query(
    `INSERT INTO notifications (user_id, type, priority, title, message, data, delivery_status, sent_at, delivered_at)
     SELECT 'u-' || (g % $1), 'new_message', 'normal', 'Backlog ' || g, 'A message of ordinary length, as a marketplace sends', '{"threadId":"t"}', 'delivered', now(), now()
       FROM generate_series(1, $2::int) g`,
    [USERS, USERS * BACKLOG_PER_USER],
  );
  await db.query("ANALYZE");
  const log = new DeliveryLog({ database: db, analytics: { record() {} }, clock: systemClock, logger: silentLogger, intervalMs: 1_000_000 });
  // PostgreSQL: the one backend of the variant's pool. PGlite in this thread: the main thread.
  const backend = engine === "postgres" ? Number((await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))[0]!.pid) : process.pid;
  return { name, db, log, unmarked: [], cpuNs: () => threadCpuNs(backend), rounds: [], hot: { upd: 0, hot: 0 }, drop };
}

let userCursor = 0;
function creationParams(count: number): { params: unknown[]; rows: Array<[string, string]> } {
  const rows: Array<[string, string]> = [];
  for (let i = 0; i < count; i++) rows.push([randomUUID(), `u-${userCursor++ % USERS}`]);
  const column = <T>(value: T) => rows.map(() => value);
  const now = new Date();
  return {
    rows,
    params: [
      rows.map(([id]) => id),
      rows.map(([, user]) => user),
      column("new_message"),
      column("normal"),
      rows.map((_, i) => `New message ${i}`),
      column("A message of ordinary length, as a marketplace sends"),
      column(null),
      column(null),
      column(null),
      column(null),
      column(null),
      column('{"threadId":"t"}'),
      column(null),
      column(true),
      column(null),
      [],
      [],
      [],
      [],
      5,
      now,
      new Date(now.getTime() - 86_400_000),
    ],
  };
}

/** CPU time (ns) of one thread so far: the PostgreSQL backend serving a variant, or this process's main thread (in-thread PGlite). */
function threadCpuNs(pid: number, tid = pid): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
}

async function stats(db: Database): Promise<{ upd: number; hot: number }> {
  await db.query("SELECT pg_stat_force_next_flush()");
  const [row] = await db.query<{ upd: string; hot: string }>("SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relid = 'notifications'::regclass");
  return { upd: Number(row!.upd), hot: Number(row!.hot) };
}

/** The WAL insert position (bytes): read around each measured statement, as the variants share PostgreSQL's WAL. */
async function walAt(db: Database): Promise<number> {
  const [row] = await db.query<{ lsn: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::text AS lsn");
  return Number(row!.lsn);
}

/** `run`'s CPU (on the variant's thread) and WAL, added to `at`. */
async function measured(v: Variant, at: { cpu: number; wal: number }, run: () => Promise<unknown>): Promise<void> {
  const wal0 = await walAt(v.db);
  const t0 = v.cpuNs();
  await run();
  at.cpu += v.cpuNs() - t0;
  at.wal += (await walAt(v.db)) - wal0;
}

/** One step of a variant: a creation batch and, every MARK_BATCH / CREATE_BATCH steps, the delivered mark of the oldest unmarked (one batch stays behind). */
async function step(v: Variant, at: Spent, drain: boolean): Promise<void> {
  if (!drain) {
    const { params, rows } = creationParams(CREATE_BATCH);
    await measured(v, at.create, () => v.db.query(INSERT_NOTIFICATIONS, params));
    v.unmarked.push(...rows);
  }
  if (v.unmarked.length >= (drain ? 1 : 2 * MARK_BATCH)) {
    for (const [id, user] of v.unmarked.splice(0, MARK_BATCH)) v.log.markDelivered(id, user);
    await measured(v, at.mark, () => v.log.flush());
  }
}

interface Spent {
  create: { cpu: number; wal: number };
  mark: { cpu: number; wal: number };
}

/** A round of both variants, step by step in alternating order (drift and other load hit both alike). */
async function round(variants: Variant[], record: boolean): Promise<void> {
  const before = await Promise.all(variants.map((v) => stats(v.db)));
  const spent: Spent[] = variants.map(() => ({ create: { cpu: 0, wal: 0 }, mark: { cpu: 0, wal: 0 } }));
  for (let s = 0; s * CREATE_BATCH < PER_ROUND; s++) {
    for (const k of s % 2 ? [1, 0] : [0, 1]) await step(variants[k]!, spent[k]!, false);
  }
  for (const [k, v] of variants.entries()) while (v.unmarked.length > 0) await step(v, spent[k]!, true);
  for (const [k, v] of variants.entries()) {
    const after = await stats(v.db);
    // The delivery log logs a failed flush (silently here) and retries: each notification must have been marked once.
    if (after.upd - before[k]!.upd !== PER_ROUND) throw new Error(`${v.name}: ${after.upd - before[k]!.upd} rows updated in a round of ${PER_ROUND}`);
    if (!record) continue;
    const { create, mark } = spent[k]!;
    v.rounds.push({
      createUs: create.cpu / 1000 / PER_ROUND,
      markUs: mark.cpu / 1000 / PER_ROUND,
      cpuUs: (create.cpu + mark.cpu) / 1000 / PER_ROUND,
      walBytes: (create.wal + mark.wal) / PER_ROUND,
    });
    v.hot.upd += after.upd - before[k]!.upd;
    v.hot.hot += after.hot - before[k]!.hot;
  }
  // Statistics between rounds, outside the measured steps (PGlite's own refresh would otherwise ANALYZE in the middle of one).
  for (const v of variants) await v.db.query("ANALYZE notifications");
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (xs: number[]) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;

async function sizes(db: Database): Promise<string> {
  const rows = await db.query<{ name: string; kb: number }>(
    `SELECT c.relname AS name, (pg_relation_size(c.oid) / 1024)::int AS kb
       FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
        AND (c.relname LIKE 'notifications%') AND c.relkind IN ('r', 'i') ORDER BY c.relname`,
  );
  const total = rows.reduce((a, r) => a + r.kb, 0);
  return `${(total / 1024).toFixed(1)} MB (${rows.map((r) => `${r.name} ${r.kb} kB`).join(", ")})`;
}

async function bench(engine: "pglite" | "postgres"): Promise<void> {
  const dir = beforeDir();
  const variants = [await open(engine, "before", dir), await open(engine, "after", dir)];
  try {
    await round(variants, false);
    for (let r = 0; r < ROUNDS; r++) await round(variants, true);
    process.stdout.write(`\n${engine}: ${ROUNDS} rounds x ${PER_ROUND} notifications (creations of ${CREATE_BATCH}, delivered marks of ${MARK_BATCH}) over ${USERS} users x ${BACKLOG_PER_USER} backlog\n`);
    for (const v of variants) {
      const split = `creation ${fmt(v.rounds.map((r) => r.createUs))} + mark ${fmt(v.rounds.map((r) => r.markUs))}`;
      process.stdout.write(
        `  ${v.name.padEnd(6)} CPU us/notification ${fmt(v.rounds.map((r) => r.cpuUs))}: ${split}; WAL B/notification ${fmt(v.rounds.map((r) => r.walBytes))}; HOT ${((100 * v.hot.hot) / Math.max(1, v.hot.upd)).toFixed(0)}% of ${v.hot.upd} updates\n`,
      );
      process.stdout.write(`         sizes: ${await sizes(v.db)}\n`);
    }
    // Both schemas ran each round side by side: the per-round ratio is what other load on the machine moves least.
    const [b, a] = variants as [Variant, Variant];
    const ratio = (pick: (r: Variant["rounds"][number]) => number) => fmt(b.rounds.map((r, i) => (100 * pick(a.rounds[i]!)) / pick(r)));
    process.stdout.write(`  after / before, per round (%): CPU ${ratio((r) => r.cpuUs)}, creation ${ratio((r) => r.createUs)}, mark ${ratio((r) => r.markUs)}, WAL ${ratio((r) => r.walBytes)}\n`);
  } finally {
    for (const v of variants) {
      await v.log.stop();
      await v.drop();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const engines = values.engine === "both" ? (["pglite", "postgres"] as const) : [values.engine as "pglite" | "postgres"];
for (const engine of engines) {
  if (engine === "postgres" && !process.env.DATABASE_URL) {
    process.stderr.write("bench/marks.ts: postgres needs DATABASE_URL\n");
    process.exit(2);
  }
  await bench(engine);
}
