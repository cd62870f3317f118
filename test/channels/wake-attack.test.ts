/**
 * Adversarial guards for the creation writer's spaced wakes (60188fb:
 * NotificationInsertBatcher wakes the delivery workers at most every 20 ms,
 * a held-back wake on a timer). The promise: every due send is followed by
 * a wake sent after its commit. Attacked here: a batch committed while the
 * wake is held back, and the instance stopping before the timer fires (the
 * wake was lost with the closed writer until close() sent it at stop).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUE_WAKE_CHANNEL } from "../../src/channels/delivery.js";
import { type Database, openDatabase } from "../../src/db/index.js";
import { NotificationInsertBatcher, type PendingInsert } from "../../src/notifications/group-insert.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

let t: TestHerald;
let schema: string;
let listener: pg.Client;
/** Payloads heard on the wake channel, in commit order. */
const heard: string[] = [];
let onHeard: (() => void) | undefined;

beforeAll(async () => {
  if (!usingPostgres) return;
  t = await startTestHerald();
  [{ schema }] = (await t.database.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
  listener = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await listener.connect();
  listener.on("notification", (n) => {
    if (n.channel !== QUEUE_WAKE_CHANNEL) return;
    heard.push(n.payload ?? "");
    onHeard?.();
  });
  await listener.query(`LISTEN ${QUEUE_WAKE_CHANNEL}`);
});
afterAll(async () => {
  await listener?.end();
  await t?.stop();
});

/** A creation with an SMS due now (what NotificationService hands the batcher). */
function dueNow(userId: string, title: string): PendingInsert {
  const now = new Date();
  return {
    params: [userId, "new_message", "normal", title, "m", null, null, null, null, null, null, null, true, null],
    sends: { channels: ["sms"], dueAt: [now], payloads: [JSON.stringify({ mode: "single", inApp: true })] },
    now,
    keyCutoff: new Date(now.getTime() - 86_400_000),
  };
}

/** Sends `marker` on the wake channel from the listener's own session and resolves once it is heard (notifications arrive in commit order). */
async function heardUpTo(marker: string): Promise<string[]> {
  const arrived = new Promise<void>((resolve) => {
    onHeard = () => {
      if (heard.includes(marker)) resolve();
    };
  });
  await listener.query("SELECT pg_notify($1, $2)", [QUEUE_WAKE_CHANNEL, marker]);
  await arrived;
  onHeard = undefined;
  return heard.splice(0, heard.indexOf(marker) + 1).filter((p) => p === schema);
}

describe.runIf(usingPostgres)("spaced wakes under attack", () => {
  it("an instance that stops right after a creation whose wake was held back still wakes the workers", async () => {
    await t.herald.users.upsert({ id: "wake-attack-1", phone: "+15550008001" });
    // Another instance on the same schema: its own batcher and writer connections.
    const other: Database = await openDatabase({ url: process.env.DATABASE_URL, schema, poolSize: 1 });
    const batcher = new NotificationInsertBatcher(other, { maxAttempts: 5 });
    await heardUpTo(`start-${Date.now()}`);
    expect(await batcher.insert(dueNow("wake-attack-1", "first"))).toBeDefined(); // woken at once
    // Within 20 ms of that wake: this commit's wake is held back on the timer...
    expect(await batcher.insert(dueNow("wake-attack-1", "second"))).toBeDefined();
    // ...and the instance stops: herald.stop() closes the batcher (its "creations" component), then the database.
    await batcher.close();
    await other.close();
    const wakes = await heardUpTo(`end-${Date.now()}`);
    // A wake sent after each commit: the first one at once, the second after the first (in flight or spaced).
    expect(wakes.length).toBeGreaterThanOrEqual(2);
  });
});
