/** Export of events and aggregates parses back (CSV and JSON) to exactly the rows in the database, across page boundaries. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AnalyticsHarness, analyticsHarness, parseCsv, uuid } from "./fixtures.js";
import { EVENT_TYPES } from "../../src/analytics/index.js";

const NOW = "2024-05-01T00:00:00.000Z";
const awkward = { note: 'comma, "quotes", newline\nand CRLF\r\n', emoji: "Zoë 🚀", nested: { a: [1, 2] } };

async function collect(gen: AsyncGenerator<string>): Promise<{ text: string; chunks: number }> {
  let text = "";
  let chunks = 0;
  for await (const c of gen) {
    text += c;
    chunks++;
  }
  return { text, chunks };
}

describe("analytics export", () => {
  let h: AnalyticsHarness;
  let expectedEvents: { id: string; notificationId: string; userId: string; eventType: string; timestamp: string; metadata: unknown; channel: string | null }[];

  beforeAll(async () => {
    h = await analyticsHarness(NOW);
    // 25 notifications x 3 events, all at the same few instants so the (timestamp, id) keyset matters.
    for (let i = 1; i <= 25; i++) {
      const id = uuid(i);
      await h.notification({ id, userId: `user-${i % 4}`, type: i % 2 ? "new_message" : "booking_request" });
      for (const [k, t] of (["sent", "delivered", i % 3 ? "opened" : "clicked"] as const).entries()) {
        h.event(id, `user-${i % 4}`, t, new Date(Date.parse(NOW) - (k + 1) * 60_000 - (i % 2) * 86_400_000 * 10), i === 7 ? awkward : t === "sent" ? { i, channel: "email" } : { i });
      }
    }
    h.event(uuid(3), "user-3", "opened", "2024-04-30T23:59:00Z"); // a duplicate open: 2 events, 1 in aggregates
    await h.ingest.flush();
    const rows = await h.db.query<{ id: string; notification_id: string; user_id: string; event_type: string; ts: Date | string; metadata: unknown; channel: string | null }>(
      "SELECT e.id::text AS id, e.notification_id::text AS notification_id, e.user_id, e.event_type, e.timestamp AS ts, e.metadata, e.channel FROM analytics_events e ORDER BY e.timestamp, e.id",
    );
    expectedEvents = rows.map((r) => ({
      id: r.id,
      notificationId: r.notification_id,
      userId: r.user_id,
      eventType: r.event_type,
      timestamp: new Date(r.ts).toISOString(),
      metadata: r.metadata,
      channel: r.channel,
    }));
    expect(expectedEvents).toHaveLength(76);
    expect(expectedEvents.filter((e) => e.channel === "email")).toHaveLength(24);
  });
  afterAll(async () => h.close());

  it("events as CSV parse back to the same rows, in pages of 10", async () => {
    const { text, chunks } = await collect(h.service.exportData({ format: "csv", kind: "events", chunkSize: 10 }));
    expect(chunks).toBeGreaterThanOrEqual(8); // header + 8 pages: streamed page by page
    const parsed = parseCsv(text).map((r): Record<string, unknown> => ({ ...r, metadata: r.metadata === "" ? null : JSON.parse(r.metadata!), channel: r.channel || null }));
    expect(parsed).toEqual(expectedEvents);
    expect(parsed.find((r) => r.notificationId === uuid(7))?.metadata).toEqual(awkward);
  });

  it("events as JSON parse back to the same rows", async () => {
    const { text } = await collect(h.service.exportData({ format: "json", kind: "events", chunkSize: 7 }));
    expect(JSON.parse(text)).toEqual(expectedEvents);
  });

  it("the days window keeps only recent events", async () => {
    const { text } = await collect(h.service.exportData({ format: "json", kind: "events", days: 1 }));
    const since = Date.parse(NOW) - 86_400_000;
    expect(JSON.parse(text)).toEqual(expectedEvents.filter((e) => Date.parse(e.timestamp) >= since));
    expect(JSON.parse(text).length).toBe(12 * 3 + 1);
  });

  it("aggregates (CSV and JSON) hold one row per notification with distinct counts", async () => {
    const expected = new Map<string, Record<string, string | number>>();
    for (const e of expectedEvents) {
      const row =
        expected.get(e.notificationId) ??
        ({ notificationId: e.notificationId, userId: e.userId, type: Number.parseInt(e.notificationId.slice(-12), 16) % 2 ? "new_message" : "booking_request", ...Object.fromEntries(EVENT_TYPES.map((t) => [t, 0])) } as Record<string, string | number>);
      row[e.eventType] = 1;
      expected.set(e.notificationId, row);
    }
    const want = [...expected.values()].sort((a, b) => String(a.notificationId).localeCompare(String(b.notificationId)));
    expect(want).toHaveLength(25);
    expect(want.find((r) => r.notificationId === uuid(3))?.opened).toBe(1);

    const json = JSON.parse((await collect(h.service.exportData({ format: "json", kind: "aggregates", chunkSize: 4 }))).text);
    expect(json).toEqual(want);
    const csv = parseCsv((await collect(h.service.exportData({ format: "csv", kind: "aggregates", chunkSize: 4 }))).text);
    expect(csv).toEqual(want.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]))));
  });

  it("an empty export is a header (CSV) or an empty array (JSON)", async () => {
    expect((await collect(h.service.exportData({ format: "csv", kind: "events", userId: "nobody" }))).text).toBe(
      "id,notificationId,userId,eventType,timestamp,metadata,channel\r\n",
    );
    expect(JSON.parse((await collect(h.service.exportData({ format: "json", kind: "aggregates", userId: "nobody" }))).text)).toEqual([]);
  });

  it("refuses an unknown format or kind before streaming", () => {
    expect(() => h.service.exportData({ format: "xml" })).toThrow(expect.objectContaining({ code: "HERALD_VALIDATION" }));
    expect(() => h.service.exportData({ kind: "users" })).toThrow(expect.objectContaining({ code: "HERALD_VALIDATION" }));
  });
});
