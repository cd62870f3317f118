/**
 * Browser push from the notification center in real Chromium: the toggle
 * registers /sw.js, subscribes with Herald's VAPID key and stores the
 * subscription for the signed-in user. Chromium's push service is Google's
 * FCM; where it cannot be reached (no internet) subscribe() rejects with an
 * AbortError, and the test then checks the center's error state instead.
 */
import { randomUUID } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { DESKTOP, ensureBuilt, hasChromium, launchChromium, screenshot } from "./support.js";

describe.skipIf(!hasChromium)("browser push from the notification center", () => {
  let h: TestHerald;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    await ensureBuilt();
    h = await startTestHerald({ serveWeb: true });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: DESKTOP });
    await context.grantPermissions(["notifications"], { origin: h.baseUrl });
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await h?.stop();
  });

  async function openCenter(token: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${h.baseUrl}/#token=${token}`);
    await page.locator("[data-testid=connection-state][data-state=open]").waitFor();
    return page;
  }

  const subscriptionsOf = async (userId: string) =>
    (await h.database.query("SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE user_id = $1", [userId])) as {
      endpoint: string;
      p256dh: string;
      auth: string;
    }[];

  it("serves the service worker at /sw.js as JavaScript, revalidated on every load", async () => {
    const res = await fetch(`${h.baseUrl}/sw.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^(application|text)\/javascript/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const text = await res.text();
    expect(text).toContain('addEventListener("push"');
    expect(text).toContain('addEventListener("notificationclick"');
  });

  it("enabling registers /sw.js and stores the subscription for the user, or shows why the browser could not subscribe", async () => {
    const userId = `provider-${randomUUID()}`;
    const page = await openCenter(await h.tokenFor(userId));
    const toggle = page.getByTestId("push-toggle");
    await toggle.locator("button", { hasText: "Enable browser notifications" }).waitFor();
    await toggle.getByRole("button", { name: "Enable browser notifications" }).click();
    // Either it subscribed ("on") or it failed and is back to "off" with an error.
    await page.waitForFunction(() => {
      const el = document.querySelector("[data-testid=push-toggle]");
      return el?.getAttribute("data-state") === "on" || document.querySelector("[data-testid=push-error]") !== null;
    }, undefined, { timeout: 30_000 });

    const scope = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration("/sw.js"))?.active?.scriptURL ?? null);
    expect(scope).toBe(`${h.baseUrl}/sw.js`);

    if ((await toggle.getAttribute("data-state")) === "on") {
      const rows = await subscriptionsOf(userId);
      expect(rows).toHaveLength(1);
      const endpoint = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration("/sw.js");
        return (await reg?.pushManager.getSubscription())?.endpoint ?? null;
      });
      expect(rows[0]!.endpoint).toBe(endpoint);
      await screenshot(page, "push-enabled");

      await toggle.getByRole("button", { name: "Disable browser notifications" }).click();
      await page.locator("[data-testid=push-toggle][data-state=off]").waitFor();
      expect(await subscriptionsOf(userId)).toHaveLength(0);
    } else {
      // Sandbox without internet: Chromium cannot register with FCM.
      const message = await page.getByTestId("push-error").textContent();
      console.warn(`push subscribe unavailable in this environment: ${message}`);
      expect(message).toMatch(/Browser notifications are unavailable|Could not change browser notifications/);
      expect(await toggle.getAttribute("data-state")).toBe("off");
      // The button is usable again for a retry, and nothing was stored.
      await expect(toggle.getByRole("button", { name: "Enable browser notifications" }).isEnabled()).resolves.toBe(true);
      expect(await subscriptionsOf(userId)).toHaveLength(0);
      await screenshot(page, "push-unavailable");
    }
    await page.close();
  });
});
