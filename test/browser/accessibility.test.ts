/**
 * axe-core (WCAG 2.1 A and AA rules) over every page in real Chromium, at
 * laptop and phone widths: the sign-in forms, the notification center and the
 * dashboard, each before there is any data and again with data. Any violation
 * fails the test, listed rule by rule with the element's selector. The empty
 * pages are audited first: the dashboard counts every provider's events.
 */
import { randomUUID } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeraldClient } from "../../src/client/index.js";
import type { TestHerald } from "../support/herald.js";
import { DESKTOP, PHONE, axeViolations, createNotification, hasChromium, seedEngagement, startBrowserHerald } from "./support.js";

const VIEWPORTS = { desktop: DESKTOP, phone: PHONE };

describe.skipIf(!hasChromium)("accessibility of the web UI (axe-core, WCAG 2.1 AA) in Chromium", () => {
  let h: TestHerald;
  let browser: Browser;
  let stop: (() => Promise<void>) | undefined;
  let client: HeraldClient | undefined;

  beforeAll(async () => {
    ({ h, browser, stop } = await startBrowserHerald());
  });
  afterAll(async () => {
    client?.close();
    await stop?.();
  });

  /**
   * Opens `path` in a fresh context at each width, lets `ready` bring the page
   * to the state under audit, and returns every violation prefixed with the width.
   */
  async function audit(path: string, ready: (page: Page) => Promise<void>): Promise<string[]> {
    const found: string[] = [];
    for (const [width, viewport] of Object.entries(VIEWPORTS)) {
      const context = await browser.newContext({ viewport });
      try {
        const page = await context.newPage();
        await page.goto(`${h.baseUrl}${path}`);
        await ready(page);
        found.push(...(await axeViolations(page)).map((v) => `${width} ${path.replace(/#.*/, "")}: ${v}`));
      } finally {
        await context.close();
      }
    }
    return found;
  }

  const connected = (page: Page) => page.locator("[data-testid=connection-state][data-state=open]").waitFor();
  const dashboardLoaded = (page: Page) => page.locator("[data-testid=analytics-dashboard][data-loaded=true]").waitFor();

  it.each([
    ["the center's sign-in form", "/", false],
    ["the dashboard's sign-in form", "/analytics", false],
    ["the sign-in form with a refused token's notice", "/#token=not-a-valid-token", true],
  ] as const)("%s has no violations", async (_name, path, notice) => {
    const signin = (page: Page) => (notice ? page.getByTestId("signin").getByRole("alert") : page.getByTestId("signin")).waitFor();
    expect(await audit(path, signin)).toEqual([]);
  });

  it("the notification center with no notifications has no violations", async () => {
    const token = await h.tokenFor(`provider-${randomUUID()}`);
    const found = await audit(`/#token=${token}`, async (page) => {
      await connected(page);
      await page.getByText("No notifications yet.").waitFor();
    });
    expect(found).toEqual([]);
  });

  it("the dashboard with no data has no violations", async () => {
    const found = await audit(`/analytics#token=${h.adminToken}`, async (page) => {
      await dashboardLoaded(page);
      await page.getByText("No notifications in this period.").waitFor();
    });
    expect(found).toEqual([]);
  });

  /** One provider's inbox with every priority, an action link, one read and one archived; made once, audited in two views. */
  let inbox: Promise<{ token: string; read: string; archived: string }> | undefined;
  function fullInbox() {
    inbox ??= (async () => {
      const userId = `provider-${randomUUID()}`;
      const make = (body: Omit<Parameters<typeof createNotification>[2], "userId">) => createNotification(h.baseUrl, h.adminToken, { userId, ...body });
      const archived = await make({ type: "platform_update", title: "Old news", priority: "low" });
      await make({ type: "payment_received", title: "Payment of €120 received", actionUrl: "/analytics", actionLabel: "View payout" });
      await make({ type: "booking_request", title: "Booking request from Ana", priority: "high" });
      await make({ type: "security_alert", title: "New sign-in from Firefox", priority: "critical" });
      const read = await make({ type: "new_message", title: "Message from Ben" });
      const token = await h.tokenFor(userId);
      const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      for (const [id, patch] of [[read.id, { read: true }], [archived.id, { archived: true }]] as const) {
        const res = await fetch(`${h.baseUrl}/api/notifications/${id}`, { method: "PATCH", headers: auth, body: JSON.stringify(patch) });
        if (res.status !== 200) throw new Error(`PATCH ${id}: ${res.status} ${await res.text()}`);
      }
      return { token, read: read.id, archived: archived.id };
    })();
    return inbox;
  }

  it("the notification center listing notifications of every priority, read and unread, with an action link, has no violations", async () => {
    const { token, read } = await fullInbox();
    const found = await audit(`/#token=${token}`, async (page) => {
      await connected(page);
      await page.locator(`[data-testid=notification][data-id="${read}"][data-read=true]`).waitFor();
      await expect(page.getByTestId("notification").count()).resolves.toBe(4);
    });
    expect(found).toEqual([]);
  });

  it("the notification center's archived view has no violations", async () => {
    const { token, archived } = await fullInbox();
    const found = await audit(`/#token=${token}`, async (page) => {
      await connected(page);
      await page.getByTestId("filter-archived").click();
      await page.locator(`[data-testid=notification][data-id="${archived}"]`).waitFor();
    });
    expect(found).toEqual([]);
  });

  it("the dashboard with data (metrics, both charts, top notifications) has no violations", async () => {
    const seeded = await seedEngagement(h, `provider-${randomUUID()}`, ["new_message", "booking_request", "payment_received", "security_alert", "platform_update"]);
    client = seeded.client;
    const found = await audit(`/analytics#token=${h.adminToken}`, async (page) => {
      await dashboardLoaded(page);
      await page.locator("[data-testid=trends-chart] .recharts-line-curve").first().waitFor();
      await page.locator("[data-testid=type-chart] .recharts-bar-rectangle").first().waitFor();
      await page.locator("[data-testid=top-notifications] tbody tr").first().waitFor();
    });
    expect(found).toEqual([]);
  });
});
