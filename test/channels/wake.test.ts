/**
 * The delivery worker is woken by the queue, not by its poll (issue 17): the
 * trigger of migration 0013 sends NOTIFY herald_queue when a send due now is
 * queued, and OutOfAppDelivery LISTENs. With a poll of one hour, a send that
 * goes out at all was woken.
 */
import { performance } from "node:perf_hooks";
import pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutOfAppDelivery, WebhookSmsProvider, enqueueOutOfApp } from "../../src/channels/index.js";
import { QUEUE_WAKE_CHANNEL } from "../../src/channels/delivery.js";
import { openDatabase } from "../../src/db/index.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { type SmsReceiver, WEBHOOK_SECRET, seedNotification, startSmsReceiver, waitFor } from "./support.js";

const HOUR = 3600_000;
let t: TestHerald;
let receiver: SmsReceiver;
let delivery: OutOfAppDelivery;

beforeAll(async () => {
  receiver = await startSmsReceiver();
  t = await startTestHerald();
  // A worker of its own (Herald's jobs are off in tests) that would poll once an hour.
  delivery = new OutOfAppDelivery(
    { ...t.herald.runtime, metrics: new Registry() },
    { smsProvider: new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), pollIntervalMs: HOUR, workerId: "wake-test" },
  );
  await delivery.start();
});
afterAll(async () => {
  await delivery?.stop();
  await t?.stop();
  await receiver?.close();
});

async function smsUser(id: string, phone: string) {
  await t.herald.users.upsert({ id, phone });
  await t.herald.notifications.preferences.update(id, { smsEnabled: true, emailEnabled: false });
}

describe(`waking the delivery worker (${usingPostgres ? "postgres" : "pglite"})`, () => {
  it("a notification created while the worker sleeps (poll: 1 hour) is texted at once", async () => {
    await smsUser("wake-1", "+15550007001");
    await delivery.worker.whenIdle();
    const created = await t.herald.notifications.createAndSendNotification({ userId: "wake-1", type: "new_message", title: "Wake up", message: "now" });
    await waitFor(() => receiver.delivered.some((d) => d.notificationId === created!.id), "the SMS");
    expect(receiver.delivered.filter((d) => d.to === "+15550007001")).toHaveLength(1);
  });

  it("a second send after the worker went back to sleep is woken too", async () => {
    await smsUser("wake-2", "+15550007002");
    await delivery.worker.whenIdle();
    const first = await t.herald.notifications.createAndSendNotification({ userId: "wake-2", type: "new_message", title: "One", message: "1" });
    await waitFor(() => receiver.delivered.some((d) => d.notificationId === first!.id), "the first SMS");
    await delivery.worker.whenIdle();
    const second = await t.herald.notifications.createAndSendNotification({ userId: "wake-2", type: "new_message", title: "Two", message: "2" });
    await waitFor(() => receiver.delivered.some((d) => d.notificationId === second!.id), "the second SMS");
  });

  it.runIf(usingPostgres)("a send queued by another instance (its own connections) wakes this one", async () => {
    const [{ schema }] = (await t.database.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const other = await openDatabase({ url: process.env.DATABASE_URL, schema, poolSize: 1 });
    try {
      await smsUser("wake-3", "+15550007003");
      await delivery.worker.whenIdle();
      const id = await seedNotification(other, { userId: "wake-3", title: "From elsewhere" });
      await other.transaction((tx) => enqueueOutOfApp(tx, { id, userId: "wake-3" }, { inApp: true, outOfApp: { sms: { mode: "now" } } }, { now: new Date() }));
      await waitFor(() => receiver.delivered.some((d) => d.notificationId === id), "the SMS queued elsewhere");
    } finally {
      await other.close();
    }
  });

  it.runIf(usingPostgres)("a burst of creations wakes at most once per 20 ms, and a wake follows the last one", async () => {
    const [{ schema }] = (await t.database.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const listener = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await listener.connect();
    try {
      let wakes = 0;
      // Schemas of other test files share the channel: their wakes name their own schema.
      listener.on("notification", (n) => {
        if (n.channel === QUEUE_WAKE_CHANNEL && n.payload === schema) wakes += 1;
      });
      await listener.query(`LISTEN ${QUEUE_WAKE_CHANNEL}`);
      await smsUser("wake-burst", "+15550007009");
      await delivery.worker.whenIdle();
      const started = performance.now();
      const ids: string[] = [];
      // Ten batches in a row, each of five creations due now: each batch's commit asks for a wake.
      for (let batch = 0; batch < 10; batch++) {
        const made = await Promise.all(
          Array.from({ length: 5 }, (_, i) => t.herald.notifications.createAndSendNotification({ userId: "wake-burst", type: "new_message", title: `Burst ${batch}.${i}`, message: "m" })),
        );
        ids.push(...made.map((n) => n!.id));
      }
      const creating = performance.now() - started;
      // The poll is an hour away: every SMS sent means the last commit was followed by a wake.
      await waitFor(() => ids.every((id) => receiver.delivered.some((d) => d.notificationId === id)), "every SMS of the burst");
      expect(wakes).toBeGreaterThanOrEqual(1);
      // 20 ms apart from the first commit to at most 20 ms after the last: every batch woke before (10 here).
      expect(wakes).toBeLessThanOrEqual(Math.ceil(creating / 20) + 2);
    } finally {
      await listener.end();
    }
  });
});
