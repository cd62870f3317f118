/**
 * `node --conditions=herald-source --import tsx bench/inbox-trigger.ts [rounds]`:
 * the inbox counts' creation trigger (migrations 0017 and 0021), old against
 * new, on PGlite (in process, main thread) and, when DATABASE_URL is set, on
 * PostgreSQL (its own schema, dropped at the end). Per batch size (1, 5, 16
 * notifications of distinct users out of 1,000 in one INSERT), each round runs
 * the same statements under each variant in turn, the trigger functions
 * swapped in between: "old" (0017's inbox_state_apply and
 * inbox_state_follow_insert), "new" (0021's) and "off" (the inbox trigger
 * disabled: what the rest of the INSERT costs). CPU per created notification:
 * this process's for PGlite, the PostgreSQL backend's (/proc/<pid>/schedstat)
 * for PostgreSQL. Prints the medians over rounds and new/old.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import pg from "pg";
import { type Connection, type Database, migrate, openDatabase, quoteIdent } from "../src/db/index.js";

const ROUNDS = Number(process.argv[2] ?? 7);
const BATCHES = [1, 5, 16];
/** Rows per measured run of one variant (and half as many to warm it up after the swap). */
const ROWS = 3000;
const VARIANTS = ["old", "new", "off"] as const;
type Variant = (typeof VARIANTS)[number];

const migrations = new URL("../src/db/migrations/", import.meta.url);
/** 0017's definitions of the two functions 0021 replaces. */
function oldDefinitions(): string[] {
  const text = readFileSync(new URL("0017_inbox_archive_watermark.sql", migrations), "utf8");
  const pick = (name: string) => {
    const m = new RegExp(`CREATE (?:OR REPLACE )?FUNCTION ${name}\\([\\s\\S]*?\\n\\$\\$;`).exec(text);
    if (!m) throw new Error(`0017 has no ${name}`);
    return m[0].replace(/^CREATE (OR REPLACE )?FUNCTION/, "CREATE OR REPLACE FUNCTION");
  };
  return [pick("inbox_state_apply"), pick("inbox_state_follow_insert")];
}

const INSERT = `INSERT INTO notifications (user_id, type, priority, title, message, data)
  SELECT 'u' || ((($2::int + g) * 7919) % 1000), 'new_message', 'normal', 'Hello there', 'A message body of some length', '{"a":1}'::jsonb
    FROM generate_series(1, $1::int) g`;

async function measure(label: string, conn: Connection, cpuNs: () => Promise<number>): Promise<void> {
  await conn.query("INSERT INTO users (id, email) SELECT 'u' || g, 'u' || g || '@x.test' FROM generate_series(0, 999) g ON CONFLICT DO NOTHING");
  const defs = await conn.query<{ def: string }>(
    "SELECT pg_get_functiondef(oid) AS def FROM unnest(ARRAY['inbox_state_apply'::regproc, 'inbox_state_follow_insert'::regproc]) oid",
  );
  const source: Record<Variant, string[]> = { old: oldDefinitions(), new: defs.map((d) => d.def), off: [] };
  let offset = 0;
  const run = async (batch: number, rows: number) => {
    for (let i = 0; i < Math.floor(rows / batch); i++) {
      offset += batch;
      await conn.query(INSERT, [batch, offset]);
    }
  };
  const use = async (v: Variant) => {
    await conn.query(v === "off" ? "ALTER TABLE notifications DISABLE TRIGGER notifications_inbox_insert" : "ALTER TABLE notifications ENABLE TRIGGER notifications_inbox_insert");
    for (const statement of source[v]) await conn.query(statement);
  };
  console.log(`\n${label}: CPU per created notification (us), median of ${ROUNDS} rounds of ${ROWS} rows per variant`);
  console.log("batch      old      new      off   new/old   trigger new/old (minus off)");
  for (const batch of BATCHES) {
    const samples: Record<Variant, number[]> = { old: [], new: [], off: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Rotated so no variant always follows the same one.
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = VARIANTS[(r + k) % VARIANTS.length]!;
        await use(v);
        await run(batch, ROWS / 2);
        const t = await cpuNs();
        await run(batch, ROWS);
        samples[v].push((await cpuNs()) - t);
      }
      // Keeps the table the same size for every batch size's rounds.
      await conn.query("TRUNCATE notifications CASCADE");
      await conn.query("UPDATE inbox_state SET in_app_count = 0, archived_count = 0, unread_count = 0, archived_unread_count = 0");
    }
    const med = (v: Variant) => {
      const s = [...samples[v]].sort((a, b) => a - b);
      return s[Math.floor(s.length / 2)]! / (Math.floor(ROWS / batch) * batch) / 1000;
    };
    const [o, n, f] = [med("old"), med("new"), med("off")];
    console.log(
      `${String(batch).padStart(5)} ${o.toFixed(1).padStart(8)} ${n.toFixed(1).padStart(8)} ${f.toFixed(1).padStart(8)} ${(n / o).toFixed(2).padStart(9)}   ${((n - f) / (o - f)).toFixed(2).padStart(6)}`,
    );
  }
  await use("new");
}

async function onPGlite(): Promise<void> {
  const db = await openDatabase({ pgliteThread: false });
  await migrate(db);
  await db.connection((conn) => measure("PGlite (in process)", conn, async () => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  }));
  await db.close();
}

async function onPostgres(url: string): Promise<void> {
  const schema = `bench_inbox_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
  let db: Database | undefined;
  try {
    db = await openDatabase({ url, schema, poolSize: 1 });
    await migrate(db);
    await db.connection(async (conn) => {
      const [{ pid }] = (await conn.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")) as [{ pid: number }];
      // The backend's time on CPU in ns (first field), at nanosecond resolution.
      const cpu = async () => Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
      await measure("PostgreSQL (backend CPU)", conn, cpu);
    });
  } finally {
    await db?.close();
    await admin.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
    await admin.end();
  }
}

await onPGlite();
if (process.env.DATABASE_URL) await onPostgres(process.env.DATABASE_URL);
