/**
 * The notification center without a mouse and without sight, in real
 * Chromium: the bell opens and closes it with Enter and Space, Escape closes
 * it and gives focus back to the bell, Tab reaches every notification's
 * actions in reading order with a visible focus ring, the filters are a
 * labelled radio group driven by the arrow keys, and new arrivals over
 * WebSocket are spoken through live regions (critical ones assertively).
 */
import { randomUUID } from "node:crypto";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHerald } from "../support/herald.js";
import { createNotification, hasChromium, openCenter as openTheCenter, startBrowserHerald } from "./support.js";

/** What has focus: its test id (or tag), the notification it belongs to, and whether a focus ring is drawn. */
interface Focused {
  what: string;
  notification: string | null;
  ring: boolean;
}

const focused = (page: Page): Promise<Focused> =>
  page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body) return { what: "body", notification: null, ring: false };
    // A radio's ring is drawn on its label (the radio itself is transparent over it).
    const ringed = el instanceof HTMLInputElement && el.type === "radio" ? el.closest("label")! : el;
    const style = getComputedStyle(ringed);
    return {
      what: el.dataset.testid ?? el.tagName.toLowerCase(),
      notification: el.closest<HTMLElement>("[data-testid=notification]")?.dataset.id ?? null,
      ring: style.outlineStyle !== "none" && Number.parseFloat(style.outlineWidth) >= 2,
    };
  });

describe.skipIf(!hasChromium)("the notification center by keyboard and screen reader in Chromium", () => {
  let h: TestHerald;
  let context: BrowserContext;
  let stop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ h, context, stop } = await startBrowserHerald());
  });
  afterAll(() => stop?.());

  const openCenter = async (userId: string) => openTheCenter(context, h.baseUrl, await h.tokenFor(userId));

  /** Presses Tab until `want` has focus; returns every stop on the way (want last). Fails after `max` presses. */
  async function tabUntil(page: Page, want: (f: Focused) => boolean, max = 40): Promise<Focused[]> {
    const stops: Focused[] = [];
    for (let i = 0; i < max; i++) {
      await page.keyboard.press("Tab");
      const f = await focused(page);
      stops.push(f);
      if (want(f)) return stops;
    }
    throw new Error(`not reached in ${max} Tab presses; stops: ${stops.map((s) => s.what).join(", ")}`);
  }

  const bellExpanded = (page: Page) => page.getByTestId("notification-bell").getAttribute("aria-expanded");

  it("Enter and Space toggle the center from the bell, Escape closes it and focus returns to the bell", async () => {
    const userId = `provider-${randomUUID()}`;
    await createNotification(h.baseUrl, h.adminToken, { userId, title: "Booking request from Ana" });
    const page = await openCenter(userId);
    await page.getByTestId("notification").first().waitFor();

    const stops = await tabUntil(page, (f) => f.what === "notification-bell");
    expect(stops.at(-1)!.ring, "the focused bell draws a focus ring").toBe(true);
    expect(await bellExpanded(page)).toBe("true");
    expect(await page.getByTestId("notification-bell").getAttribute("aria-controls")).toBe(await page.getByTestId("notification-center").getAttribute("id"));

    await page.keyboard.press("Enter");
    await page.getByTestId("notification-center").waitFor({ state: "hidden" });
    expect(await bellExpanded(page)).toBe("false");
    await page.keyboard.press("Space");
    await page.getByTestId("notification-center").waitFor({ state: "visible" });
    expect(await bellExpanded(page)).toBe("true");

    // Into the center, then Escape from one of its controls.
    await tabUntil(page, (f) => f.what === "mark-read");
    await page.keyboard.press("Escape");
    await page.getByTestId("notification-center").waitFor({ state: "hidden" });
    expect(await bellExpanded(page)).toBe("false");
    expect((await focused(page)).what).toBe("notification-bell");
    // Enter opens it again, the bell keeping focus.
    await page.keyboard.press("Enter");
    await page.getByTestId("notification-center").waitFor({ state: "visible" });
    expect((await focused(page)).what).toBe("notification-bell");
    await page.close();
  });

  it("Tab reaches the filters and each notification's actions in order, with a visible focus ring, and Enter acts", async () => {
    const userId = `provider-${randomUUID()}`;
    const older = await createNotification(h.baseUrl, h.adminToken, { userId, title: "Payment of €120 received", actionUrl: "/analytics", actionLabel: "View payout" });
    const newer = await createNotification(h.baseUrl, h.adminToken, { userId, title: "Booking request from Ana" });
    const page = await openCenter(userId);
    await page.locator(`[data-id="${older.id}"]`).waitFor();

    await tabUntil(page, (f) => f.what === "notification-bell");
    const stops = await tabUntil(page, (f) => f.notification === older.id && f.what === "archive");
    const path = stops.map((s) => (s.notification ? `${s.notification === newer.id ? "newer" : "older"}:${s.what}` : s.what));
    // Newest first; within a notification: its link, read, archive.
    const order = ["filter-all", "newer:mark-read", "newer:archive", "older:action-link", "older:mark-read", "older:archive"];
    expect(path.filter((p) => order.includes(p))).toEqual(order);
    const unringed = stops.filter((s) => !s.ring).map((s) => s.what);
    expect(unringed, "every focus stop draws a focus ring").toEqual([]);

    // Shift+Tab back to "Mark read" of the older one; Enter marks it read.
    await page.keyboard.press("Shift+Tab");
    expect(await focused(page)).toMatchObject({ what: "mark-read", notification: older.id });
    await page.keyboard.press("Enter");
    await page.locator(`[data-id="${older.id}"][data-read=true]`).waitFor();
    await page.locator("[data-testid=unread-badge][data-count='1']").waitFor();
    await page.close();
  });

  it("the filters are a labelled radio group: the arrow keys change the list", async () => {
    const userId = `provider-${randomUUID()}`;
    const archived = await createNotification(h.baseUrl, h.adminToken, { userId, title: "Old news" });
    const kept = await createNotification(h.baseUrl, h.adminToken, { userId, title: "Fresh news" });
    const page = await openCenter(userId);
    await page.locator(`[data-id="${kept.id}"] [data-testid=archive]`).waitFor();
    await page.locator(`[data-id="${archived.id}"] [data-testid=archive]`).click();
    await page.locator(`[data-id="${archived.id}"]`).waitFor({ state: "detached" });

    const group = page.getByRole("group", { name: "Show notifications" });
    expect(await group.getByRole("radio").count()).toBe(3);
    expect(await group.getByRole("radio", { name: "All" }).isChecked()).toBe(true);

    await tabUntil(page, (f) => f.what === "filter-all");
    await page.keyboard.press("ArrowRight");
    expect(await group.getByRole("radio", { name: "Archived" }).isChecked()).toBe(true);
    await page.locator(`[data-id="${archived.id}"]`).waitFor();
    await page.locator(`[data-id="${kept.id}"]`).waitFor({ state: "detached" });
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("ArrowLeft");
    expect(await group.getByRole("radio", { name: "Unread" }).isChecked()).toBe(true);
    await page.locator(`[data-id="${kept.id}"]`).waitFor();
    expect(await page.getByTestId("notification").count()).toBe(1);
    await page.close();
  });

  it("announces a notification arriving over WebSocket (critical ones assertively), even with the center closed; the badge has a name", async () => {
    const userId = `provider-${randomUUID()}`;
    const earlier = await createNotification(h.baseUrl, h.adminToken, { userId, title: "Already there" });
    const page = await openCenter(userId);
    await page.locator(`[data-id="${earlier.id}"]`).waitFor();
    const polite = page.locator("[aria-live=polite]");
    const assertive = page.locator("[aria-live=assertive]");
    expect(await polite.count()).toBe(1);
    expect(await assertive.count()).toBe(1);
    // What the first page listed is not news.
    expect(await polite.textContent()).toBe("");
    expect(await page.getByRole("img", { name: "1 unread" }).count()).toBe(1);
    expect(await page.getByRole("button", { name: "Notifications 1 unread" }).count()).toBe(1);

    const announced = (region: "polite" | "assertive", text: string) =>
      page.waitForFunction(([r, t]) => document.querySelector(`[aria-live=${r}]`)?.textContent === t, [region, text] as const, { timeout: 2_000 });

    await createNotification(h.baseUrl, h.adminToken, { userId, type: "booking_request", title: "Booking request from Ana", priority: "normal" });
    await announced("polite", "New notification: Booking request from Ana");
    expect(await assertive.textContent()).toBe("");

    // Closed: the center is hidden, the regions are not.
    await page.getByTestId("notification-bell").press("Enter");
    await page.getByTestId("notification-center").waitFor({ state: "hidden" });
    await createNotification(h.baseUrl, h.adminToken, { userId, type: "security_alert", title: "New sign-in from Firefox", priority: "critical" });
    await announced("assertive", "New critical notification: New sign-in from Firefox");
    expect(await polite.textContent()).toBe("New notification: Booking request from Ana");
    await page.getByRole("img", { name: "3 unread" }).waitFor();
    expect(await page.getByRole("button", { name: "Notifications 3 unread" }).count()).toBe(1);
    await page.close();
  });
});
