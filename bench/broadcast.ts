/**
 * `node --import tsx bench/broadcast.ts [--users 100000] [--rounds 3] [--no-write]`
 *
 * Broadcast to a directory of N users on real PostgreSQL (DATABASE_URL):
 * Herald's `createAndBroadcastNotification` (one query for the distinct saved
 * settings, the delivery decision once per setting, then one INSERT ... SELECT
 * over the directory writing the rows and every recipient's out-of-app sends;
 * and the fan-out call) against the physical floor, a raw `INSERT INTO
 * notifications ... SELECT FROM users` of the same rows, measured alternately
 * in the same run, each on emptied notification and queue tables. Appends
 * the table to bench/RESULTS.md.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { loadConfig } from "../src/config/index.js";
import { migrate, openDatabase, quoteIdent } from "../src/db/index.js";
import { NotificationService } from "../src/notifications/index.js";
import { NotificationWebSocketServer } from "../src/realtime/index.js";
import { createRuntime } from "../src/runtime.js";
import { appendResults } from "./lib/report.js";
import { describeMachine } from "./lib/machine.js";

const { values } = parseArgs({
  options: { users: { type: "string", default: "100000" }, rounds: { type: "string", default: "3" }, "no-write": { type: "boolean" } },
});
const USERS = Number(values.users);
const ROUNDS = Number(values.rounds);
const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write("bench/broadcast.ts needs DATABASE_URL (real PostgreSQL)\n");
  process.exit(2);
}

const schema = `bench_broadcast_${randomBytes(4).toString("hex")}`;
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
const database = await openDatabase({ url, schema, poolSize: 4 });
const dataDir = mkdtempSync(path.join(tmpdir(), "herald-bench-"));
const httpServer = createServer();

try {
  await migrate(database);
  await database.query(
    `INSERT INTO users (id, email, timezone) SELECT 'p-' || g, 'p' || g || '@example.com', (ARRAY['UTC','Europe/Paris','Asia/Kolkata','America/New_York'])[1 + g % 4]
       FROM generate_series(1, $1::int) g`,
    [USERS],
  );
  // One user in ten has saved preferences (some with quiet hours), as in a real directory.
  await database.query(
    `INSERT INTO notification_preferences (user_id, quiet_hours_enabled, sound_volume)
     SELECT 'p-' || g, g % 20 = 0, 50 FROM generate_series(10, $1::int, 10) g`,
    [USERS],
  );
  await database.query("ANALYZE");

  const runtime = await createRuntime(
    loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir, JWT_SECRET: "bench-secret-0123456789-0123456789-abcdef", LOG_LEVEL: "silent" }),
    { database },
  );
  runtime.start();
  const realtime = new NotificationWebSocketServer(httpServer, runtime);
  await realtime.start();
  const service = new NotificationService(realtime, runtime);
  const content = { type: "platform_update", priority: "normal" as const, title: "New feature: Advanced Analytics", message: "Check out our new analytics dashboard", actionUrl: "/analytics", actionLabel: "Explore" };

  const herald = async () => {
    const count = await service.createAndBroadcastNotification(content);
    if (count !== USERS) throw new Error(`broadcast reached ${count} of ${USERS}`);
  };
  const baseline = async () => {
    const rows = await database.query<{ n: number }>(
      `WITH ins AS (
         INSERT INTO notifications (user_id, type, priority, title, message, action_url, action_label, broadcast_id)
         SELECT u.id, $1, $2, $3, $4, $5, $6, gen_random_uuid() FROM users u RETURNING 1)
       SELECT count(*)::int AS n FROM ins`,
      [content.type, content.priority, content.title, content.message, content.actionUrl, content.actionLabel],
    );
    if (rows[0]!.n !== USERS) throw new Error("baseline row count");
  };
  // The floor with the one write Herald adds per recipient: default-settings users get an e-mail send
  // (unless seen, due after the unseen delay), a queue row with its indexes and wake trigger.
  const withQueue = async () => {
    const rows = await database.query<{ n: number }>(
      `WITH ins AS (
         INSERT INTO notifications (user_id, type, priority, title, message, action_url, action_label, broadcast_id)
         SELECT u.id, $1, $2, $3, $4, $5, $6, gen_random_uuid() FROM users u RETURNING id, user_id),
       q AS (
         INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, max_attempts, payload, created_at, updated_at)
         SELECT id, user_id, 'email', 'pending', now() + $7 * interval '1 millisecond', 5, '{"mode":"single","inApp":true,"unlessSeen":true}'::jsonb, now(), now() FROM ins RETURNING 1)
       SELECT count(*)::int AS n FROM q`,
      [content.type, content.priority, content.title, content.message, content.actionUrl, content.actionLabel, runtime.config.emailUnseenDelayMs],
    );
    if (rows[0]!.n !== USERS) throw new Error("baseline row count (with queue rows)");
  };
  const timed = async (fn: () => Promise<void>) => {
    // The queue too: Herald's rounds write a send per recipient, and a queue grown by earlier rounds would slow the later ones.
    await database.query("TRUNCATE notifications, notification_queue");
    await database.query("CHECKPOINT").catch(() => undefined);
    const t = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };

  // One warm-up each, then alternate so both see the same cache and load.
  await timed(herald);
  await timed(baseline);
  await timed(withQueue);
  const h: number[] = [];
  const b: number[] = [];
  const q: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    h.push(await timed(herald));
    b.push(await timed(baseline));
    q.push(await timed(withQueue));
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(", ")})`;
  const table = [
    "| case | Herald | baseline | ratio (Herald / baseline) |",
    "| --- | --- | --- | --- |",
    `| broadcast to ${USERS.toLocaleString("en")} users: createAndBroadcastNotification vs raw INSERT ... SELECT FROM users | ${fmt(h)} | ${fmt(b)} | ${(median(h) / median(b)).toFixed(2)} |`,
    `| same, against the floor plus one e-mail queue row per recipient (INSERT ... SELECT of both) | ${fmt(h)} | ${fmt(q)} | ${(median(h) / median(q)).toFixed(2)} |`,
    `| throughput (rows/s, median) | ${Math.round(USERS / (median(h) / 1000)).toLocaleString("en")} | ${Math.round(USERS / (median(b) / 1000)).toLocaleString("en")} | |`,
  ].join("\n");
  process.stdout.write(`\n${table}\n\n${ROUNDS} alternating rounds after one warm-up each; PostgreSQL ${(await database.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]!.v}\n`);
  if (!values["no-write"]) {
    appendResults("bench/broadcast.ts", `DATABASE_URL=... node --import tsx bench/broadcast.ts --users ${USERS} --rounds ${ROUNDS}`, table, [
      "Herald: one query for the distinct saved settings, the delivery decision once per setting, one INSERT ... SELECT over the directory writing the rows and every recipient's out-of-app sends (a default-settings user gets an e-mail row); publishBroadcast (no sockets connected). Notification and queue tables emptied before every round.",
      "Baseline: the same rows by a bare INSERT ... SELECT FROM users (no preferences, no RETURNING to the client). Second baseline: the same, plus one e-mail queue row per recipient written by the same statement (what a default-settings recipient of a normal-priority broadcast gets).",
      describeMachine(),
    ]);
  }
  await realtime.close();
  await runtime.close();
} finally {
  await database.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  await admin.end();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
