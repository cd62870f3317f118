/**
 * The delivery log's hold of `sent` marks: an ack that arrives after a flush
 * began, but before the mark is written, takes its place (one UPDATE of the
 * row, pending -> delivered with sent_at, both events), and flush() still
 * writes a mark that no ack came for.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnalyticsEventInput } from "../../src/analytics/index.js";
import { systemClock } from "../../src/observability/index.js";
import { DeliveryLog } from "../../src/realtime/delivery-log.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { insertNotification } from "./helpers.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.cleanup();
});

/** A delivery log whose timer never fires during a test (ticks are the test's), recording statements and events. */
function log() {
  const statements: string[] = [];
  const events: AnalyticsEventInput[] = [];
  const counting = {
    query: <T,>(text: string, params?: unknown[]) => {
      statements.push(text);
      return database.query<T>(text, params);
    },
  };
  const delivery = new DeliveryLog({
    database: counting,
    analytics: { record: (e) => void events.push(e) },
    clock: systemClock,
    logger: pino({ level: "silent" }),
    intervalMs: 60_000,
  });
  const updates = () => statements.filter((s) => /UPDATE notifications/.test(s)).length;
  return { delivery, statements, events, updates };
}

const statusOf = async (id: string) =>
  (await database.query<{ delivery_status: string; sent_at: Date | null; delivered_at: Date | null }>("SELECT delivery_status, sent_at, delivered_at FROM notifications WHERE id = $1", [id]))[0]!;

describe("delivery log", () => {
  it("a sent mark is held over a flush: the ack that follows writes the row once, with sent_at and both events", async () => {
    const n = await insertNotification(database, "u-held");
    const { delivery, events, updates } = log();
    delivery.start();
    delivery.markSent(n.id, "u-held");
    // A flush begins between the push and the ack: the mark is held, not written.
    await delivery.tick();
    expect(updates()).toBe(0);
    expect((await statusOf(n.id)).delivery_status).toBe("pending");
    delivery.markDelivered(n.id, "u-held");
    await delivery.tick();
    await delivery.tick();
    expect(updates()).toBe(1);
    const row = await statusOf(n.id);
    expect(row.delivery_status).toBe("delivered");
    expect(row.sent_at).not.toBeNull();
    expect(events.map((e) => e.eventType).sort()).toEqual(["delivered", "sent"]);
    await delivery.stop();
  });

  it("a mark no ack came for is written by the second tick after it, and at once by flush()", async () => {
    const [a, b] = [await insertNotification(database, "u-unacked"), await insertNotification(database, "u-unacked")];
    const { delivery, events } = log();
    delivery.start();
    delivery.markSent(a.id, "u-unacked");
    await delivery.tick();
    expect((await statusOf(a.id)).delivery_status).toBe("pending");
    await delivery.tick();
    expect((await statusOf(a.id)).delivery_status).toBe("sent");
    delivery.markSent(b.id, "u-unacked");
    expect(delivery.pending).toBe(1);
    await delivery.flush();
    expect((await statusOf(b.id)).delivery_status).toBe("sent");
    expect(events.filter((e) => e.eventType === "sent")).toHaveLength(2);
    await delivery.stop();
  });

  // helper-76's reading of the stop path: with the database down, stop's one flush logged "will retry" and
  // dropped the marks with no retry and no word of it.
  it("at stop, a database that fails twice is tried again; one that stays down gets one line saying what was lost", async () => {
    const n = await insertNotification(database, "u-stop");
    const lines: { msg: string; entries?: number }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const failing = (failures: number) => ({
      query: <T,>(text: string, params?: unknown[]) => (failures-- > 0 ? Promise.reject(Object.assign(new Error("down"), { code: "57P01" })) : database.query<T>(text, params)),
    });
    const recovering = new DeliveryLog({ database: failing(2), analytics: { record: () => undefined }, clock: systemClock, logger, intervalMs: 60_000 });
    recovering.start();
    recovering.markDelivered(n.id, "u-stop");
    await recovering.stop();
    expect((await statusOf(n.id)).delivery_status).toBe("delivered");
    expect(lines.filter((l) => /lost at stop/.test(l.msg))).toEqual([]);

    const down = new DeliveryLog({ database: failing(Number.POSITIVE_INFINITY), analytics: { record: () => undefined }, clock: systemClock, logger, intervalMs: 60_000 });
    down.start();
    down.markDelivered(n.id, "u-stop");
    down.markSent(n.id, "u-other");
    await down.stop();
    expect(lines.filter((l) => /lost at stop/.test(l.msg)).map((l) => l.entries)).toEqual([2]);
  });

  it("an ack by another user does not take the place of the mark", async () => {
    const n = await insertNotification(database, "u-owner");
    const { delivery } = log();
    delivery.start();
    delivery.markSent(n.id, "u-owner");
    delivery.markDelivered(n.id, "u-stranger");
    await delivery.flush();
    expect((await statusOf(n.id)).delivery_status).toBe("sent");
    await delivery.stop();
  });
});
