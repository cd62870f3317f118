/**
 * `asOf` on the overview and trends says up to when every committed event is
 * counted: the catch-up of THIS read, also when the figures come from the
 * cache (which every roll-up pass that folds rows in clears), never the time
 * the cached figures were first computed.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type AnalyticsHarness, analyticsHarness, uuid } from "./fixtures.js";

const T0 = "2026-03-01T12:00:00.000Z";
let h: AnalyticsHarness;
beforeAll(async () => {
  h = await analyticsHarness(T0);
  await h.notification({ id: uuid(1), userId: "u1", type: "new_message" });
  await h.notification({ id: uuid(2), userId: "u2", type: "new_message" });
});
afterAll(async () => h?.close());

it("a cached overview or trend answers this read's asOf, and an event recorded since is counted", async () => {
  h.event(uuid(1), "u1", "sent", T0);
  const first = await h.service.getOverview();
  expect(first).toMatchObject({ asOf: T0, sent: 1 });
  const firstTrends = await h.service.getTrends({ interval: "day", days: 1 });
  expect(firstTrends.asOf).toBe(T0);

  h.clock.advance(60_000);
  const cached = await h.service.getOverview();
  expect(cached).toMatchObject({ asOf: "2026-03-01T12:01:00.000Z", sent: 1, until: first.until });
  expect((await h.service.getTrends({ interval: "day", days: 1 })).asOf).toBe("2026-03-01T12:01:00.000Z");

  h.event(uuid(2), "u2", "sent", "2026-03-01T12:01:00.000Z");
  h.clock.advance(60_000);
  expect(await h.service.getOverview()).toMatchObject({ asOf: "2026-03-01T12:02:00.000Z", sent: 2 });
});
