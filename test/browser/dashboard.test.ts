/**
 * The analytics dashboard at /analytics in real Chromium: headline metrics,
 * charts drawn with data, live refresh, the day/week/month switch and a CSV
 * export that downloads. The data comes from the real flow: notifications
 * created through REST, delivered to an SDK client (acks), read and clicked.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_COLUMNS } from "../../src/analytics/index.js";
import type { HeraldClient } from "../../src/client/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import {
  DESKTOP,
  PHONE,
  analyticsOverview,
  createNotification,
  ensureBuilt,
  hasChromium,
  launchChromium,
  screenshot,
  seedEngagement,
  untilAnalytics,
} from "./support.js";

describe.skipIf(!hasChromium)("analytics dashboard in Chromium", () => {
  let h: TestHerald;
  let browser: Browser;
  let page: Page;
  let client: HeraldClient;
  const userId = `provider-${randomUUID()}`;
  const created: string[] = [];

  const overview = () => analyticsOverview(h);
  const until = (ok: Parameters<typeof untilAnalytics>[1]) => untilAnalytics(h, ok);

  beforeAll(async () => {
    await ensureBuilt();
    h = await startTestHerald({ serveWeb: true });
    const seeded = await seedEngagement(h, userId, ["new_message", "booking_request", "payment_received", "platform_update", "new_message", "booking_confirmed"]);
    client = seeded.client;
    created.push(...seeded.created);

    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: DESKTOP, acceptDownloads: true })).newPage();
    await page.goto(`${h.baseUrl}/analytics#token=${h.adminToken}`);
    await page.locator("[data-testid=analytics-dashboard][data-loaded=true]").waitFor();
  });
  afterAll(async () => {
    client?.close();
    await browser?.close();
    await h?.stop();
  });

  const metric = (key: string) => page.getByTestId(`metric-${key}`).locator(".herald-card-value").textContent();

  it("shows the headline metrics the API computes", async () => {
    const o = await overview();
    expect(page.url()).toBe(`${h.baseUrl}/analytics`);
    expect(await metric("sent")).toBe(o.sent.toLocaleString("en-US"));
    expect(await metric("delivery-rate")).toBe(`${o.deliveryRate.toFixed(2)}%`);
    expect(await metric("open-rate")).toBe(`${o.openRate.toFixed(2)}%`);
    expect(await metric("click-rate")).toBe(`${o.clickRate.toFixed(2)}%`);
    expect(o.openRate).toBeGreaterThan(0);
  });

  it("says how fresh its figures are (the overview's asOf)", async () => {
    const status = page.locator(".herald-live");
    await status.filter({ hasText: "counts every event up to" }).waitFor();
    expect(await status.textContent()).toMatch(/counts every event up to \d{1,2}:\d{2}:\d{2}/);
  });

  it("shows the per-channel table from the same overview answer: five channels, in-app sent as the API counts it", async () => {
    const o = (await overview()) as unknown as { byChannel: { in_app: { sent: number } } };
    const rows = page.locator("[data-testid=channel-breakdown] tbody tr[data-channel]");
    expect(await rows.count()).toBe(5);
    const inApp = page.locator("[data-testid=channel-breakdown] tr[data-channel=in_app] td").first();
    expect(await inApp.textContent()).toBe(o.byChannel.in_app.sent.toLocaleString("en-US"));
    expect(o.byChannel.in_app.sent).toBeGreaterThan(0);
  });

  it("draws the trends and by-type charts with data, and lists top notifications", async () => {
    await page.locator("[data-testid=trends-chart] .recharts-line-curve").first().waitFor();
    expect(await page.locator("[data-testid=trends-chart] .recharts-line-curve").count()).toBe(4);
    await page.locator("[data-testid=type-chart] .recharts-bar-rectangle").first().waitFor();
    // One group of bars per type that was sent (5 distinct types; types never sent are left out).
    expect(await page.getByTestId("type-chart").getAttribute("data-rows")).toBe("5");
    await page.locator("[data-testid=top-notifications] tbody tr").first().waitFor();
    expect(await page.locator("[data-testid=top-notifications] tbody tr").count()).toBeGreaterThan(0);
  });

  it("updates the headline numbers live when new notifications are sent", async () => {
    const before = (await overview()).sent;
    created.push((await createNotification(h.baseUrl, h.adminToken, { userId, title: "One more" })).id);
    await until((o) => o.sent === before + 1);
    // No reload: the dashboard polls every few seconds.
    await page.waitForFunction(
      (want) => document.querySelector("[data-testid=metric-sent] .herald-card-value")?.textContent === want,
      (before + 1).toLocaleString("en-US"),
      { timeout: 20_000 },
    );
  });

  it("switches between daily, weekly and monthly buckets", async () => {
    const daily = Number(await page.getByTestId("trends-chart").getAttribute("data-points"));
    expect(daily).toBeGreaterThanOrEqual(30);
    await page.getByTestId("interval-week").click();
    await page.waitForFunction(() => {
      const n = Number(document.querySelector("[data-testid=trends-chart]")?.getAttribute("data-points"));
      return n > 0 && n <= 14;
    });
    await page.getByTestId("interval-month").click();
    await page.locator("[data-testid=interval-month]:checked").waitFor();
    await page.waitForFunction(() => {
      const n = Number(document.querySelector("[data-testid=trends-chart]")?.getAttribute("data-points"));
      return n >= 12 && n <= 13;
    });
    await page.locator("[data-testid=trends-chart] .recharts-line-curve").first().waitFor();
    await page.getByTestId("interval-day").click();
    await page.locator("[data-testid=trends-chart] .recharts-line-curve").first().waitFor();
  });

  it("exports the events as a CSV download", async () => {
    const download = page.waitForEvent("download");
    await page.getByTestId("export-csv").click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/\.csv$/);
    const csv = await readFile((await file.path())!, "utf8");
    const [header, ...rows] = csv.trim().split(/\r?\n/);
    expect(header).toBe(EVENT_COLUMNS.join(","));
    for (const id of created.slice(0, 6)) expect(csv).toContain(id);
    expect(rows.filter((r) => r.includes(",clicked,")).length).toBe(2);
  });

  it("is readable at laptop and phone widths (screenshots in artifacts/)", async () => {
    await page.locator("[data-testid=type-chart] .recharts-bar-rectangle").first().waitFor();
    await screenshot(page, "analytics-desktop");
    await page.setViewportSize(PHONE);
    await page.locator("[data-testid=trends-chart] .recharts-line-curve").first().waitFor();
    // The charts re-measure on a ResizeObserver callback after the viewport change: wait for the
    // layout to settle, then require that nothing is wider than the phone.
    const fits = await page
      .waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, undefined, { timeout: 5_000 })
      .then(() => true, () => false);
    expect(fits, `page ${await page.evaluate(() => document.documentElement.scrollWidth)} px wide at ${PHONE.width} px`).toBe(true);
    await screenshot(page, "analytics-phone");
    await page.setViewportSize(DESKTOP);
  });
});
