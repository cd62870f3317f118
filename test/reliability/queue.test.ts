/**
 * The delivery queue under contention (PostgreSQL; PGlite has one connection,
 * so nothing there runs side by side): 4 workers claiming 10,000 rows claim
 * and send each exactly once; rows held by a worker that died are claimed
 * again after the lease; a job that always fails gets exactly its maximum
 * attempts, with growing delays, then dead-letters while the rest flows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Channel, type ChannelJob, DeliveryWorker, retryable } from "../../src/channels/index.js";
import { claimDue } from "../../src/channels/queue-sql.js";
import { silentLogger, systemClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { fault, record } from "./support/figures.js";
import { eventually } from "./support/processes.js";

const ROWS = 10_000;
let db: TestDatabase;

/** Writes `n` notifications for users with an e-mail address, each with an e-mail queue row; returns their queue ids. */
async function enqueue(n: number, tag: string): Promise<string[]> {
  await db.query(
    `INSERT INTO users (id, email) SELECT 'q-user-' || g, 'q' || g || '@example.com' FROM generate_series(0, 99) g ON CONFLICT (id) DO NOTHING`,
  );
  const rows = await db.query<{ id: string }>(
    `WITH n AS (
       INSERT INTO notifications (user_id, type, priority, title, message)
       SELECT 'q-user-' || (g % 100), 'new_message', 'normal', $2 || g, 'm' FROM generate_series(1, $1::int) g
       RETURNING id, user_id)
     INSERT INTO notification_queue (notification_id, user_id, channel) SELECT id, user_id, 'email' FROM n RETURNING id`,
    [n, `${tag}-`],
  );
  return rows.map((r) => r.id);
}

function worker(id: string, channel: Channel, extra: Partial<ConstructorParameters<typeof DeliveryWorker>[0]> = {}): DeliveryWorker {
  return new DeliveryWorker({
    database: db,
    channels: { email: channel },
    clock: systemClock,
    logger: silentLogger,
    workerId: id,
    batchSize: 50,
    concurrency: 5,
    pollIntervalMs: 50,
    ...extra,
  });
}

const statusCount = async (ids: string[], status: string) =>
  (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notification_queue WHERE id = ANY($1::uuid[]) AND status = $2", [ids, status]))[0]!.n;

beforeAll(async () => {
  if (usingPostgres) db = await openTestDatabase({ poolSize: 16 });
});
afterAll(() => db?.cleanup());

describe.skipIf(!usingPostgres)("the delivery queue under contention (PostgreSQL)", () => {
  it("4 workers claiming 10,000 rows at once send each row exactly once", async () => {
    const ids = await enqueue(ROWS, "bulk");
    const sends = new Map<string, number>();
    const perWorker = new Map<string, number>();
    const channelOf = (workerId: string): Channel => ({
      name: "email",
      async send(job: ChannelJob) {
        sends.set(job.queueId, (sends.get(job.queueId) ?? 0) + 1);
        perWorker.set(workerId, (perWorker.get(workerId) ?? 0) + 1);
      },
    });
    const workers = ["w0", "w1", "w2", "w3"].map((id) => worker(id, channelOf(id)));
    for (const w of workers) w.start();
    await eventually(async () => (await statusCount(ids, "sent")) === ROWS, 120_000, "all rows sent");
    await Promise.all(workers.map((w) => w.stop()));
    const twice = [...sends.values()].filter((c) => c > 1).length;
    const [claims] = await db.query<{ extra: number }>(
      "SELECT count(*) FILTER (WHERE attempts <> 1)::int AS extra FROM notification_queue WHERE id = ANY($1::uuid[])",
      [ids],
    );
    record({ checked: ROWS, lost: ROWS - sends.size, wireDuplicates: twice });
    expect(sends.size).toBe(ROWS);
    expect(twice).toBe(0);
    expect(claims!.extra).toBe(0); // each row claimed once (attempts counts claims)
    expect(perWorker.size).toBe(4); // they really worked side by side
  });

  it("rows held by a worker that died are claimed again after its lease and sent once", async () => {
    const ids = await enqueue(40, "orphan");
    // The dead worker: claims under a 1 s lease and never answers.
    const claimed = await claimDue(db, "dead-worker", new Date(), 1_000, 40);
    expect(claimed.length).toBe(40);
    fault("worker_killed");
    const sends: string[] = [];
    const live = worker("live", { name: "email", send: async (job) => void sends.push(job.queueId) });
    live.start();
    await eventually(async () => (await statusCount(ids, "sent")) === 40, 30_000, "orphaned rows re-delivered");
    await live.stop();
    expect(new Set(sends).size).toBe(40);
    expect(sends.length).toBe(40);
    const attempts = await db.query<{ attempts: number }>("SELECT attempts FROM notification_queue WHERE id = ANY($1::uuid[])", [ids]);
    expect(attempts.every((r) => r.attempts === 2)).toBe(true);
  });

  it("a job that always fails gets exactly max_attempts tries with growing delays, then dead-letters; others keep flowing", async () => {
    const [poison, ...others] = await enqueue(30, "poison");
    const tries: number[] = [];
    const sent: string[] = [];
    const w = worker(
      "poison-worker",
      {
        name: "email",
        async send(job) {
          if (job.queueId === poison) {
            tries.push(Date.now());
            throw retryable("smtp_451", "try again later");
          }
          sent.push(job.queueId);
        },
      },
      { backoff: { baseMs: 100, maxMs: 2_000 }, random: () => 1 },
    );
    w.start();
    await eventually(async () => (await statusCount([poison!], "failed")) === 1, 30_000, "the poison job to dead-letter");
    await eventually(async () => (await statusCount(others, "sent")) === others.length, 30_000, "the others to be sent");
    await w.stop();
    const [row] = await db.query<{ attempts: number; max_attempts: number; last_error: string }>("SELECT attempts, max_attempts, last_error FROM notification_queue WHERE id = $1", [poison]);
    expect(tries.length).toBe(row!.max_attempts);
    expect(row!.attempts).toBe(row!.max_attempts);
    expect(row!.last_error).toContain("smtp_451");
    // Backoff: each wait at least the nominal delay for that attempt (100, 200, 400... ms with random = 1).
    for (let i = 1; i < tries.length; i++) expect(tries[i]! - tries[i - 1]!).toBeGreaterThanOrEqual(100 * 2 ** (i - 1) - 20);
    expect(new Set(sent).size).toBe(others.length);
  });
});
