/**
 * Issue #16.12 and docs/delivery.md, Analytics: every rate is a share of what it divides by, at
 * most 100%, and every figure matches a hand count from analytics_events.
 * An open or a click proves a delivery, and any of them proves a send
 * (see IMPLIED in src/analytics/sql.ts and README "Analytics figures").
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EventType, rebuildRollups } from "../../src/analytics/index.js";
import { DELETE_OWN } from "../../src/notifications/sql.js";
import { type AnalyticsHarness, analyticsHarness, uuid } from "./fixtures.js";

const START = "2024-06-03T00:00:00.000Z";
const TYPES = ["new_message", "booking_request", "platform_update"];

type Op =
  | { op: "create"; user: number; type: number }
  | { op: "broadcast"; users: number; type: number }
  | { op: "deliver" | "read" | "click" | "archive" | "delete"; target: number }
  | { op: "readAll"; user: number }
  | { op: "flush" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("create" as const), user: fc.nat(3), type: fc.nat(2) }),
  fc.record({ op: fc.constant("broadcast" as const), users: fc.integer({ min: 1, max: 4 }), type: fc.nat(2) }),
  fc.record({ op: fc.constantFrom("deliver" as const, "read" as const, "click" as const, "archive" as const, "delete" as const), target: fc.nat() }),
  fc.record({ op: fc.constant("readAll" as const), user: fc.nat(3) }),
  fc.constant({ op: "flush" as const }),
);

const inRange = (m: { deliveryRate: number; openRate: number; clickRate: number }) =>
  [m.deliveryRate, m.openRate, m.clickRate].every((r) => r >= 0 && r <= 100);

describe("analytics rates (property)", () => {
  let h: AnalyticsHarness;
  beforeAll(async () => {
    h = await analyticsHarness(START);
  });
  afterAll(async () => h.close());

  async function reset() {
    await h.ingest.flush();
    await h.db.query("TRUNCATE notifications, analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats, analytics_deleted_notifications");
    await h.cache.deletePrefix("analytics:");
    h.clock.set(START);
  }

  /** Distinct notifications per figure, counted by hand from the raw events: an open or click implies delivery, any of them a send. */
  async function handCount(where = "true", params: unknown[] = []) {
    const [row] = await h.db.query<{ sent: number; delivered: number; opened: number; clicked: number }>(
      `SELECT count(*) FILTER (WHERE s)::int AS sent, count(*) FILTER (WHERE d)::int AS delivered,
              count(*) FILTER (WHERE o)::int AS opened, count(*) FILTER (WHERE c)::int AS clicked
       FROM (SELECT notification_id,
                    bool_or(event_type IN ('sent', 'delivered', 'opened', 'clicked')) AS s,
                    bool_or(event_type IN ('delivered', 'opened', 'clicked')) AS d,
                    bool_or(event_type = 'opened') AS o, bool_or(event_type = 'clicked') AS c
             FROM analytics_events WHERE ${where} GROUP BY notification_id) x`,
      params,
    );
    return row!;
  }

  it("2 delivered, 3 created offline, then read-all: open rate 100%, not 250%", async () => {
    await reset();
    const ids = [1, 2, 3, 4, 5].map(uuid);
    for (const id of ids) await h.notification({ id, userId: "u", type: "new_message" });
    for (const id of ids.slice(0, 2)) for (const t of ["sent", "delivered"] as const) h.event(id, "u", t, START);
    for (const id of ids) h.event(id, "u", "opened", START);
    const o = await h.service.getOverview();
    expect(o).toMatchObject({ sent: 5, delivered: 5, opened: 5, openRate: 100, deliveryRate: 100 });
    expect(await h.service.getUserMetrics("u")).toMatchObject({ delivered: 5, opened: 5, openRate: 100 });
  });

  it("any interleaving of creations, deliveries, reads, clicks, deletes and broadcasts keeps every rate in [0, 100] and equal to a hand count", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        await reset();
        const live: { id: string; user: string; type: string; group: string }[] = [];
        let n = 0;
        const emit = (x: { id: string; user: string }, type: EventType) => h.event(x.id, x.user, type, h.clock.now());
        for (const op of ops) {
          h.clock.advance(60_000);
          if (op.op === "create" || op.op === "broadcast") {
            const broadcast = op.op === "broadcast" ? uuid(1_000_000 + ++n) : undefined;
            const users = op.op === "create" ? [op.user] : Array.from({ length: op.users }, (_, i) => i);
            for (const u of users) {
              const id = uuid(++n);
              const x = { id, user: `user${u}`, type: TYPES[op.type]!, group: broadcast ?? id };
              await h.notification({ id, userId: x.user, type: x.type, broadcastId: broadcast });
              live.push(x);
            }
          } else if (op.op === "readAll") {
            for (const x of live.filter((l) => l.user === `user${op.user}`)) emit(x, "opened");
          } else if (op.op === "flush") {
            await h.ingest.flush();
          } else if (live.length > 0) {
            const x = live[op.target % live.length]!;
            if (op.op === "deliver") {
              emit(x, "sent");
              emit(x, "delivered");
            }
            if (op.op === "read") emit(x, "opened");
            if (op.op === "click") emit(x, "clicked");
            if (op.op === "archive") emit(x, "archived");
            if (op.op === "delete") {
              await h.db.query(DELETE_OWN, [x.id, x.user]);
              emit(x, "deleted");
              live.splice(live.indexOf(x), 1);
            }
          }
        }
        const check = async () => {
          const overview = await h.service.getOverview();
          expect(inRange(overview)).toBe(true);
          expect(overview).toMatchObject(await handCount());
          for (const t of overview.byType) {
            expect(inRange(t)).toBe(true);
            expect(t.type).not.toBe("unknown");
          }
          for (let u = 0; u < 4; u++) {
            const m = await h.service.getUserMetrics(`user${u}`, 7);
            expect(inRange(m)).toBe(true);
            expect(m).toMatchObject(await handCount("user_id = $1", [`user${u}`]));
          }
          const ids = await h.db.query<{ id: string }>("SELECT DISTINCT notification_id::text AS id FROM analytics_events");
          for (const { id } of ids) {
            const m = await h.service.getNotificationMetrics(id);
            expect(inRange(m)).toBe(true);
            expect(m).toMatchObject(await handCount("notification_id = $1", [id]));
          }
          for (const t of await h.service.getTopNotifications({ minDelivered: 1, limit: 100 })) expect(inRange(t)).toBe(true);
          for (const b of (await h.service.getTrends({ interval: "day", days: 2 })).buckets) expect(inRange(b)).toBe(true);
          return { overview, top: await h.service.getTopNotifications({ minDelivered: 1, limit: 100 }) };
        };
        const maintained = await check();
        await rebuildRollups(h.db);
        await h.cache.deletePrefix("analytics:");
        expect(await check()).toEqual(maintained);
      }),
      { numRuns: 30 },
    );
  }, 120_000); // 30 runs, each read catching the rollups up on a real database: 17 s alone on PostgreSQL, past 30 s beside the other analytics files
});
