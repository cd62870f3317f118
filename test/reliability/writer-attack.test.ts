/**
 * Issue 17's creation writer (7c22c03) commits a batch with the queue trigger
 * silenced (herald.queue_wake = 'client') and wakes the delivery workers with
 * its own pg_notify after the commit. A crash between the two (the process
 * killed, or the wake statement failing) leaves due sends nobody was told
 * about: the workers' 1 s poll must still send them. Simulated exactly: the
 * batch's statement on a writer session of the same kind, then no wake.
 */
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutOfAppDelivery, WebhookSmsProvider } from "../../src/channels/index.js";
import type { Queryable } from "../../src/db/index.js";
import { insertNotifications } from "../../src/notifications/group-insert.js";
import { type SmsReceiver, WEBHOOK_SECRET, startSmsReceiver, waitFor } from "../channels/support.js";
import { usingPostgres } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

/** The workers' default poll (src/channels/worker.ts), and what one claim-and-send pass may add to it here. */
const POLL_MS = 1000;
const PASS_MARGIN_MS = 1000;

describe.runIf(usingPostgres)("a creation batch committed but its wake lost (PostgreSQL)", () => {
  let t: TestHerald;
  let receiver: SmsReceiver;
  let delivery: OutOfAppDelivery;
  let writer: Queryable;

  beforeAll(async () => {
    receiver = await startSmsReceiver();
    t = await startTestHerald();
    delivery = new OutOfAppDelivery(
      { ...t.herald.runtime, metrics: new Registry() },
      { smsProvider: new WebhookSmsProvider({ url: receiver.url, secret: WEBHOOK_SECRET }), pollIntervalMs: POLL_MS, workerId: "writer-attack" },
    );
    await delivery.start();
    writer = t.database.openWriter!({ connections: 1, settings: { "herald.queue_wake": "client" } })!;
  });
  afterAll(async () => {
    await delivery?.stop();
    await t?.stop();
    await receiver?.close();
  });

  it("an SMS due now is sent by the poll, within one interval and a pass, although no NOTIFY ever came", async () => {
    await t.herald.users.upsert({ id: "wa-sms", phone: "+15550008001" });
    await t.herald.notifications.preferences.update("wa-sms", { smsEnabled: true, emailEnabled: false });
    const wakes: string[] = [];
    // Other test files (other schemas of this database) wake the same channel: the payload names the schema.
    const [{ schema }] = (await t.database.query<{ schema: string }>("SELECT current_schema() AS schema")) as [{ schema: string }];
    const stopListening = await t.database.listen("herald_queue", (p) => p === schema && wakes.push(p));
    try {
      await delivery.worker.whenIdle();
      const now = new Date();
      const [row] = await insertNotifications(
        writer,
        [
          {
            params: ["wa-sms", "new_message", "high", "Lost wake", "m", null, null, null, null, null, null, null, true, null],
            sends: { channels: ["sms"], dueAt: [now], payloads: [JSON.stringify({ mode: "single", inApp: true })] },
            now,
            keyCutoff: new Date(now.getTime() - 86_400_000),
          },
        ],
        5,
      );
      const committedAt = performance.now();
      // The crash: the batcher's pg_notify is never sent.
      await waitFor(() => receiver.delivered.some((d) => d.notificationId === row!.id), "the SMS without a wake", 5_000);
      expect(performance.now() - committedAt).toBeLessThan(POLL_MS + PASS_MARGIN_MS);
      // The writer's session really was silent: the SMS came from the poll.
      expect(wakes).toEqual([]);
      expect(receiver.delivered.filter((d) => d.to === "+15550008001")).toHaveLength(1);
    } finally {
      await stopListening();
    }
  });
});
