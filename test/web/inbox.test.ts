/** The pure parts behind herald/react: list merging, filters, live updates, formatting, API normalising. */
import { describe, expect, it } from "vitest";
import type { NotificationDto } from "../../src/protocol/index.js";
import { toTopRows, toTrends, toTypeRows } from "../../src/react/analyticsData.js";
import { relativeTime, safeHref } from "../../src/react/format.js";
import { applyUpdate, matchesFilter, mergeNotifications, normalizeState } from "../../src/react/inbox.js";

const n = (seq: number, over: Partial<NotificationDto> = {}): NotificationDto => ({
  id: `id-${seq}`,
  seq,
  userId: "u",
  type: "new_message",
  priority: "high",
  title: `t${seq}`,
  message: "m",
  description: null,
  icon: null,
  actionUrl: null,
  actionLabel: null,
  read: false,
  archived: false,
  deliveryStatus: "sent",
  sentAt: null,
  deliveredAt: null,
  readAt: null,
  relatedId: null,
  data: null,
  createdAt: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
  updatedAt: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
  ...over,
});

describe("inbox list operations", () => {
  it("merging keeps one entry per id (the incoming version) and orders newest first by cursor", () => {
    const merged = mergeNotifications([n(3), n(2, { read: true })], [n(1), n(2)]);
    expect(merged.map((x) => x.id)).toEqual(["id-3", "id-2", "id-1"]);
    expect(merged.find((x) => x.id === "id-2")!.read).toBe(true);
  });

  it.each([
    ["all", { read: false, archived: false }, true],
    ["all", { read: true, archived: false }, true],
    ["all", { read: false, archived: true }, false],
    ["unread", { read: false, archived: false }, true],
    ["unread", { read: true, archived: false }, false],
    ["unread", { read: false, archived: true }, false],
    ["archived", { read: true, archived: true }, true],
    ["archived", { read: false, archived: false }, false],
  ] as const)("filter %s with %o matches: %s", (filter, state, expected) => {
    expect(matchesFilter(state, filter)).toBe(expected);
  });

  it("a live update removes deleted and newly archived items, and keeps a just-read item in the unread view", () => {
    const list = [n(1), n(2)];
    expect(applyUpdate(list, { id: "id-1", read: false, archived: false, deleted: true }, "all").map((x) => x.id)).toEqual(["id-2"]);
    expect(applyUpdate(list, { id: "id-1", read: false, archived: true, deleted: false }, "all").map((x) => x.id)).toEqual(["id-2"]);
    const read = applyUpdate(list, { id: "id-1", read: true, archived: false, deleted: false }, "unread");
    expect(read.find((x) => x.id === "id-1")!.read).toBe(true);
  });

  it.each([
    ["open", "open"],
    ["connecting", "connecting"],
    ["reconnecting", "reconnecting"],
    ["idle", "offline"],
    ["closed", "offline"],
  ])("SDK state %s shows as %s", (sdk, shown) => {
    expect(normalizeState(sdk)).toBe(shown);
  });
});

describe("formatting", () => {
  const now = Date.parse("2024-05-10T12:00:00Z");
  it.each([
    ["2024-05-10T11:59:50Z", "just now"],
    ["2024-05-10T11:55:00Z", "5 minutes ago"],
    ["2024-05-10T09:00:00Z", "3 hours ago"],
    ["2024-05-09T12:00:00Z", "yesterday"],
  ])("%s is %s", (iso, text) => {
    expect(relativeTime(iso, now, "en")).toBe(text);
  });

  it.each([
    ["/bookings/1", "/bookings/1"],
    ["https://example.com/x", "https://example.com/x"],
    ["javascript:alert(1)", undefined],
    ["//evil.example/x", undefined],
    ["data:text/html,hi", undefined],
    [null, undefined],
  ])("action link %s becomes %s", (url, href) => {
    expect(safeHref(url)).toBe(href);
  });
});

describe("dashboard data from the analytics API shapes", () => {
  it("reads trend buckets by their local date", () => {
    const points = toTrends({ interval: "day", buckets: [{ start: "2024-05-09T04:00:00.000Z", local: "2024-05-09", sent: 3, delivered: 2, opened: 1, clicked: 0 }] });
    expect(points).toEqual([{ bucket: "2024-05-09", sent: 3, delivered: 2, opened: 1, clicked: 0 }]);
  });

  it("reads per-type rows and top notifications with the server's rates", () => {
    const [row] = toTypeRows([{ type: "new_message", sent: 4, delivered: 4, opened: 2, clicked: 1, deliveryRate: 100, openRate: 50, clickRate: 25 }]);
    expect(row).toMatchObject({ type: "new_message", sent: 4, openRate: 50, clickRate: 25 });
    const [top] = toTopRows([{ id: "abc", broadcast: false, type: "new_message", title: null, sent: 1, delivered: 1, opened: 1, clicked: 0, openRate: 100, clickRate: 0 }]);
    expect(top).toMatchObject({ id: "abc", title: "abc", openRate: 100 });
  });
});
