/**
 * AnalyticsService's refusals (src/analytics/validate.ts, zod schemas): each
 * is HERALD_VALIDATION with the detail and the field issue callers have
 * always seen, checked before anything is recorded or read.
 */
import { describe, expect, it } from "vitest";
import { type AnalyticsDeps, AnalyticsService } from "../../src/analytics/index.js";
import { MemoryCache } from "../../src/cache/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";

const ID = "123e4567-e89b-12d3-a456-426614174000";
const recorded: unknown[] = [];
const service = new AnalyticsService({
  database: { query: async () => [{ user_id: "alice" }] },
  cache: new MemoryCache(),
  clock: new ManualClock("2025-01-01T00:00:00Z"),
  logger: silentLogger,
  analytics: { record: (e: unknown) => recorded.push(e), flush: async () => undefined, rollups: { onRolledUp: () => undefined } },
} as unknown as AnalyticsDeps);

async function refusal(f: () => unknown): Promise<{ code: string; detail: string; fields: unknown } | undefined> {
  try {
    await f();
    return undefined;
  } catch (err) {
    const e = err as { code: string; message: string; fields: unknown };
    return { code: e.code, detail: e.message, fields: e.fields };
  }
}
const problem = (detail: string, field: string, message: string) => ({ code: "HERALD_VALIDATION", detail, fields: [{ field, message }] });

describe("AnalyticsService input checks", () => {
  it.each([
    ["a non-UUID id", () => service.trackEvent("notif-123", "alice", "opened"), problem("notificationId must be a UUID", "notificationId", "must be a UUID")],
    ["an empty user", () => service.trackEvent(ID, "", "opened"), problem("userId must be a non-empty string", "userId", "required")],
    ["a 256-character user", () => service.trackEvent(ID, "x".repeat(256), "opened"), problem("userId must be a non-empty string", "userId", "required")],
    [
      "a user with a NUL",
      () => service.trackEvent(ID, "a\u0000", "opened"),
      problem("userId contains a NUL character or an unpaired UTF-16 surrogate", "userId", "contains a NUL character or an unpaired UTF-16 surrogate"),
    ],
    [
      "an unknown event type",
      () => service.trackEvent(ID, "alice", "bounced"),
      problem("eventType must be one of sent, delivered, opened, clicked, archived, deleted", "eventType", "unknown event type bounced"),
    ],
    ["array metadata", () => service.trackEvent(ID, "alice", "opened", [1] as never), problem("metadata must be an object", "metadata", "must be an object")],
    [
      "a provider tracking a sent",
      () => service.trackOwnEvent("alice", ID, "sent"),
      problem("A provider may track only opened, clicked; Herald records sent itself", "eventType", "must be one of opened, clicked"),
    ],
    ["a bad interval", () => service.getTrends({ interval: "hour" }), problem("interval must be one of day, week, month", "interval", "invalid")],
    ["an unknown zone", () => service.getTrends({ timeZone: "Mars/Olympus" }), problem("Unknown time zone Mars/Olympus", "tz", "not an IANA time zone")],
    ["days 0", () => service.getUserMetrics("alice", 0), problem("days must be an integer from 1 to 3650", "days", "out of range")],
    ["days 1.5", () => service.getOverview({ days: 1.5 }), problem("days must be an integer from 1 to 3650", "days", "out of range")],
    ["a bad top order", () => service.getTopNotifications({ by: "views" }), problem("by must be one of open, click", "by", "invalid")],
    ["limit 101", () => service.getTopNotifications({ limit: 101 }), problem("limit must be an integer from 1 to 100", "limit", "out of range")],
    ["minDelivered 0", () => service.getTopNotifications({ minDelivered: 0 }), problem("minDelivered must be an integer from 1 to 1000000000", "minDelivered", "out of range")],
    ["a bad export format", () => service.exportData({ format: "xml" }), problem("format must be one of csv, json", "format", "invalid")],
    ["a bad export kind", () => service.exportData({ kind: "users" }), problem("kind must be one of events, aggregates", "kind", "invalid")],
  ])("%s", async (_name, call, expected) => {
    expect(await refusal(call)).toEqual(expected);
    expect(recorded).toEqual([]);
  });

  it("accepts a valid event and records it as given", async () => {
    await service.trackEvent(ID, "alice", "opened", { device: "ios" });
    expect(recorded).toEqual([{ notificationId: ID, userId: "alice", eventType: "opened", metadata: { device: "ios" }, timestamp: new Date("2025-01-01T00:00:00Z") }]);
  });
});
