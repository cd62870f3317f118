/**
 * Two workers (on PostgreSQL: two connection pools, as two instances would
 * have) claim 1,000 due rows at once: every row is sent exactly once.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Channel, type ChannelJob, SmsChannel, WebhookSmsProvider } from "../../src/channels/index.js";
import { type Database, openDatabase } from "../../src/db/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { makeWorker } from "./harness.js";
import { WEBHOOK_SECRET, type SmsReceiver, startSmsReceiver, waitFor } from "./support.js";

const ROWS = 1000;
let db: TestDatabase;
let second: Database;
let receiver: SmsReceiver;

beforeAll(async () => {
  db = await openTestDatabase();
  if (db.kind === "postgres") {
    const [{ schema }] = (await db.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    second = await openDatabase({ url: process.env.DATABASE_URL, schema, poolSize: 5 });
  } else {
    second = db; // PGlite is one embedded engine: both workers share it.
  }
  receiver = await startSmsReceiver();
});
afterAll(async () => {
  await receiver?.close();
  if (second && second !== db) await second.close();
  await db?.cleanup();
});

it(`two workers claiming ${ROWS} rows concurrently never send the same row twice`, async () => {
  const now = new Date("2030-05-01T12:00:00Z");
  await db.query("INSERT INTO users (id, phone) SELECT 'bulk-' || g, '+1555' || g FROM generate_series(1, 50) g");
  await db.query(
    `INSERT INTO notifications (user_id, type, priority, title, message)
     SELECT 'bulk-' || (1 + g % 50), 'new_message', 'high', 'N' || g, 'm' FROM generate_series(1, $1::int) g`,
    [ROWS],
  );
  await db.query(
    `INSERT INTO notification_queue (notification_id, user_id, channel, status, next_retry_at, payload)
     SELECT id, user_id, 'sms', 'pending', $1, '{"mode":"single","inApp":true}'::jsonb FROM notifications`,
    [now],
  );

  const sentBy = new Map<string, string[]>();
  const counting = (workerId: string): Channel => {
    const inner = new SmsChannel(new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), "https://app.example.test");
    return {
      name: "sms",
      async send(job: ChannelJob) {
        await inner.send(job);
        sentBy.set(job.notifications[0]!.id, [...(sentBy.get(job.notifications[0]!.id) ?? []), workerId]);
      },
    };
  };
  const a = makeWorker(db, { sms: counting("a") }, new ManualClock(now), { workerId: "a", batchSize: 25 }).worker;
  const b = makeWorker(second, { sms: counting("b") }, new ManualClock(now), { workerId: "b", batchSize: 25 }).worker;
  a.start();
  b.start();
  try {
    await waitFor(async () => {
      const [r] = await db.query<{ n: string | number }>("SELECT count(*) AS n FROM notification_queue WHERE status = 'sent'");
      return Number(r!.n) === ROWS;
    }, "all rows sent", 110_000);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }

  expect(receiver.delivered).toHaveLength(ROWS);
  expect(new Set(receiver.delivered.map((d) => d.notificationId)).size).toBe(ROWS);
  expect([...sentBy.values()].every((by) => by.length === 1)).toBe(true);
  const [left] = await db.query<{ n: string | number }>("SELECT count(*) AS n FROM notification_queue WHERE status <> 'sent' OR attempts <> 1");
  expect(Number(left!.n)).toBe(0);
  // Both workers took part (otherwise the test would prove nothing about concurrency).
  const perWorker = { a: 0, b: 0 };
  for (const by of sentBy.values()) perWorker[by[0] as "a" | "b"]++;
  expect(perWorker.a).toBeGreaterThan(0);
  expect(perWorker.b).toBeGreaterThan(0);
  expect(perWorker.a + perWorker.b).toBe(ROWS);
  expect(a.status).toBe("stopped");
}, 120_000);
