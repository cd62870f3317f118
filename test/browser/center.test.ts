/**
 * The notification center at / in real Chromium against a running Herald:
 * sign-in by fragment, live arrival, badge, a second tab, filters, archive,
 * archive all and tracked action clicks.
 */
import { randomUUID } from "node:crypto";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHerald } from "../support/herald.js";
import { DESKTOP, PHONE, badgeCount, createNotification, hasChromium, openCenter as openTheCenter, screenshot, startBrowserHerald } from "./support.js";

describe.skipIf(!hasChromium)("notification center in Chromium", () => {
  let h: TestHerald;
  let context: BrowserContext;
  let stop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ h, context, stop } = await startBrowserHerald());
  });
  afterAll(() => stop?.());

  const openCenter = (token: string) => openTheCenter(context, h.baseUrl, token);

  const waitForBadge = (page: Page, count: number, timeout = 5_000) =>
    page.waitForFunction(
      (n) => {
        const badge = document.querySelector("[data-testid=unread-badge]");
        return n === 0 ? badge === null : badge?.getAttribute("data-count") === String(n);
      },
      count,
      { timeout },
    );

  it("signs in from #token, keeps the token in sessionStorage and removes it from the address bar", async () => {
    const token = await h.tokenFor(`provider-${randomUUID()}`);
    const page = await openCenter(token);
    expect(page.url()).toBe(`${h.baseUrl}/`);
    expect(await page.evaluate(() => sessionStorage.getItem("herald.token.center"))).toBe(token);
    // A reload (no fragment now) stays signed in from sessionStorage.
    await page.reload();
    await page.locator("[data-testid=connection-state][data-state=open]").waitFor();
    expect(await page.getByTestId("signin").count()).toBe(0);
    await page.close();
  });

  it("asks for a token when opened without one, and accepts a pasted token", async () => {
    const page = await context.newPage();
    await page.goto(`${h.baseUrl}/`);
    await page.getByTestId("signin").waitFor();
    await page.getByLabel("Token").fill(await h.tokenFor(`provider-${randomUUID()}`));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("[data-testid=connection-state][data-state=open]").waitFor();
    await page.close();
  });

  it("a refused token sends the page back to the sign-in form with the reason", async () => {
    const page = await context.newPage();
    await page.goto(`${h.baseUrl}/#token=not-a-valid-token`);
    await page.getByTestId("signin").getByRole("alert").waitFor();
    expect(await page.getByTestId("signin").getByRole("alert").textContent()).toContain("refused");
    expect(await page.evaluate(() => sessionStorage.getItem("herald.token.center"))).toBeNull();
    await page.close();
  });

  it("shows a notification created through the REST API within a second, and the badge counts it", async () => {
    const userId = `provider-${randomUUID()}`;
    const page = await openCenter(await h.tokenFor(userId));
    await page.getByText("No notifications yet.").waitFor();
    expect(await badgeCount(page)).toBe(0);

    const created = await createNotification(h.baseUrl, h.adminToken, { userId, type: "booking_request", title: "Booking request from Ana" });
    // Live over WebSocket, no reload: the acceptance bound is one second from the API's answer.
    await page.locator(`[data-testid=notification][data-id="${created.id}"]`).waitFor({ timeout: 1_000 });
    await waitForBadge(page, 1, 1_000);
    await expect(page.getByTestId("notification").count()).resolves.toBe(1);

    await createNotification(h.baseUrl, h.adminToken, { userId, type: "security_alert", title: "New sign-in from Firefox" });
    await waitForBadge(page, 2, 1_000);
    // Newest first, with the critical priority visible.
    await expect(page.getByTestId("notification").first().textContent()).resolves.toContain("New sign-in from Firefox");
    await expect(page.locator(".herald-priority-critical").count()).resolves.toBe(1);
    await page.close();
  });

  it("a notification marked read in a second tab updates the badge in the first", async () => {
    const userId = `provider-${randomUUID()}`;
    const token = await h.tokenFor(userId);
    const first = await createNotification(h.baseUrl, h.adminToken, { userId, title: "First message" });
    await createNotification(h.baseUrl, h.adminToken, { userId, title: "Second message" });
    const tabA = await openCenter(token);
    const tabB = await openCenter(token);
    await waitForBadge(tabA, 2);
    await waitForBadge(tabB, 2);

    await tabB.locator(`[data-testid=notification][data-id="${first.id}"] [data-testid=mark-read]`).click();
    await waitForBadge(tabB, 1);
    await waitForBadge(tabA, 1, 1_000);
    await tabA.locator(`[data-testid=notification][data-id="${first.id}"][data-read=true]`).waitFor({ timeout: 1_000 });

    await tabA.getByTestId("mark-all-read").click();
    await waitForBadge(tabA, 0);
    await waitForBadge(tabB, 0);
    await tabA.close();
    await tabB.close();
  });

  it("Archive all empties the list and the badge at once, in a second tab too, and the archived filter lists everything", async () => {
    const userId = `provider-${randomUUID()}`;
    const token = await h.tokenFor(userId);
    const one = await createNotification(h.baseUrl, h.adminToken, { userId, title: "First to go" });
    const two = await createNotification(h.baseUrl, h.adminToken, { userId, title: "Second to go" });
    const tabA = await openCenter(token);
    const tabB = await openCenter(token);
    await waitForBadge(tabA, 2);
    await waitForBadge(tabB, 2);

    await tabA.getByRole("button", { name: "Archive all" }).click();
    await tabA.getByText("No notifications yet.").waitFor();
    await waitForBadge(tabA, 0);
    // The other tab hears notification_updated (archived) for each, and the count.
    await tabB.locator(`[data-testid=notification][data-id="${one.id}"]`).waitFor({ state: "detached", timeout: 1_000 });
    await tabB.locator(`[data-testid=notification][data-id="${two.id}"]`).waitFor({ state: "detached", timeout: 1_000 });
    await waitForBadge(tabB, 0, 1_000);
    await expect(tabA.getByRole("button", { name: "Archive all" }).isDisabled()).resolves.toBe(true);

    await tabA.getByTestId("filter-archived").click();
    await tabA.locator(`[data-id="${one.id}"]`).waitFor();
    await tabA.locator(`[data-id="${two.id}"]`).waitFor();
    await tabA.close();
    await tabB.close();
  });

  it("filters unread / all / archived, archives, and tracks action-link clicks", async () => {
    const userId = `provider-${randomUUID()}`;
    const keep = await createNotification(h.baseUrl, h.adminToken, {
      userId,
      type: "payment_received",
      title: "Payment of €120 received",
      actionUrl: "/analytics",
      actionLabel: "View payout",
    });
    const old = await createNotification(h.baseUrl, h.adminToken, { userId, type: "platform_update", title: "New dashboard", priority: "low" });
    const page = await openCenter(await h.tokenFor(userId));
    await page.locator(`[data-id="${old.id}"]`).waitFor();
    // The REST page and the WebSocket replay of the same two are counted once: nothing "more" to load.
    await expect(page.getByTestId("notification").count()).resolves.toBe(2);
    await expect(page.getByRole("button", { name: /Load more/ }).count()).resolves.toBe(0);
    await screenshot(page, "center-desktop");
    await page.setViewportSize(PHONE);
    await screenshot(page, "center-phone");
    // At phone width nothing overflows sideways.
    await expect(page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).resolves.toBe(true);
    await page.setViewportSize(DESKTOP);

    await page.locator(`[data-id="${old.id}"] [data-testid=archive]`).click();
    await page.locator(`[data-id="${old.id}"]`).waitFor({ state: "detached" });
    await waitForBadge(page, 1);
    await page.getByTestId("filter-archived").click();
    await page.locator(`[data-id="${old.id}"]`).waitFor();
    await expect(page.locator(`[data-id="${keep.id}"]`).count()).resolves.toBe(0);
    await page.getByTestId("filter-unread").click();
    await page.locator(`[data-id="${keep.id}"]`).waitFor();
    await expect(page.getByTestId("notification").count()).resolves.toBe(1);
    await page.getByTestId("filter-all").click();
    await page.locator(`[data-id="${keep.id}"]`).waitFor();


    const tracked = page.waitForRequest((r) => r.url().endsWith("/api/analytics/events") && r.method() === "POST");
    await page.locator(`[data-id="${keep.id}"] [data-testid=action-link]`).click();
    const body = (await tracked).postDataJSON() as { notificationId: string; eventType: string; metadata: { browser: string } };
    expect(body).toMatchObject({ notificationId: keep.id, eventType: "clicked", metadata: { browser: "chrome" } });
    // The click is counted server-side (events are batched: poll with a deadline).
    const deadline = Date.now() + 10_000;
    let clicked = 0;
    while (Date.now() < deadline && clicked === 0) {
      const res = await fetch(`${h.baseUrl}/api/analytics/notifications/${keep.id}`, { headers: { authorization: `Bearer ${h.adminToken}` } });
      clicked = ((await res.json()) as { clicked: number }).clicked;
      if (clicked === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(clicked).toBe(1);
    await page.close();
  });

  it("pages an inbox larger than a page by the server's cursor (?before=), not by offset", async () => {
    const userId = `provider-${randomUUID()}`;
    const created: string[] = [];
    for (let i = 0; i < 35; i++) created.push((await createNotification(h.baseUrl, h.adminToken, { userId, title: `Paged ${i}` })).id);
    // Acknowledged by another device, so this new device's catch-up sync brings none of them: only REST pages do.
    await h.database.query("UPDATE notifications SET delivery_status = 'delivered', delivered_at = now() WHERE user_id = $1", [userId]);
    const page = await context.newPage();
    const listRequests: string[] = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/api/notifications") listRequests.push(new URL(r.url()).search);
    });
    await page.goto(`${h.baseUrl}/#token=${await h.tokenFor(userId)}`);
    await page.locator(`[data-id="${created[34]}"]`).waitFor();
    expect(await page.getByTestId("notification").count()).toBe(30);
    const more = page.getByRole("button", { name: "Load more (5)" });
    await more.click();
    await page.locator(`[data-id="${created[0]}"]`).waitFor();
    expect(await page.getByTestId("notification").count()).toBe(35);
    expect(await page.getByRole("button", { name: /Load more/ }).count()).toBe(0);
    // The second request named the first page's last seq as its cursor, with no offset.
    const second = new URLSearchParams(listRequests.at(-1));
    expect(second.get("before")).toMatch(/^\d+$/);
    expect(second.get("offset") ?? "0").toBe("0");
    await page.close();
  });
});
