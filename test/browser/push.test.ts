/**
 * Browser push from the notification center in real Chromium: the toggle
 * registers /sw.js, subscribes with Herald's VAPID key and stores the
 * subscription for the signed-in user. Chromium's push service is Google's
 * FCM; where it cannot be reached (no internet) subscribe() rejects with an
 * AbortError, and the test then checks the center's error state instead.
 * (Headless Chromium in a Playwright context refuses every registration with
 * "Registration failed - permission denied", notifications permission or not.)
 * So a second test stands in for the browser's push service only
 * (PushManager.subscribe/getSubscription), to prove the center's own path:
 * the subscription reaches push_subscriptions and Disable removes it; and a
 * third delivers a push to /sw.js through the DevTools protocol
 * (ServiceWorker.deliverPushMessage) and reads the notification it shows.
 */
import { createECDH, randomBytes, randomUUID } from "node:crypto";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHerald } from "../support/herald.js";
import { hasChromium, openCenter as openTheCenter, screenshot, startBrowserHerald } from "./support.js";

describe.skipIf(!hasChromium)("browser push from the notification center", () => {
  let h: TestHerald;
  let context: BrowserContext;
  let stop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ h, context, stop } = await startBrowserHerald());
    await context.grantPermissions(["notifications"], { origin: h.baseUrl });
  });
  afterAll(() => stop?.());

  const openCenter = (token: string) => openTheCenter(context, h.baseUrl, token);

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

  it("with the browser's push service stood in for, Enable stores the subscription for the user and Disable deletes it", async () => {
    const userId = `provider-${randomUUID()}`;
    const fake = {
      endpoint: `https://push.example.test/send/${randomUUID()}`,
      p256dh: createECDH("prime256v1").generateKeys("base64url"),
      auth: randomBytes(16).toString("base64url"),
    };
    const page = await context.newPage();
    // Only PushManager is replaced: the worker registration, the VAPID fetch, the POST and the DELETE are real.
    await page.addInitScript((sub) => {
      let current: unknown = null;
      const proto = PushManager.prototype as unknown as Record<string, unknown>;
      proto.getSubscription = async () => current;
      proto.subscribe = async (opts: PushSubscriptionOptionsInit) => {
        if (!opts.userVisibleOnly || !(opts.applicationServerKey instanceof Uint8Array) || opts.applicationServerKey.length !== 65) {
          throw new DOMException("bad subscribe options", "InvalidAccessError");
        }
        current = {
          endpoint: sub.endpoint,
          toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: sub.p256dh, auth: sub.auth } }),
          unsubscribe: async () => {
            current = null;
            return true;
          },
        };
        return current;
      };
    }, fake);
    await page.goto(`${h.baseUrl}/#token=${await h.tokenFor(userId)}`);
    const toggle = page.getByTestId("push-toggle");
    await toggle.getByRole("button", { name: "Enable browser notifications" }).click();
    await page.locator("[data-testid=push-toggle][data-state=on]").waitFor({ timeout: 15_000 });
    expect(await subscriptionsOf(userId)).toEqual([fake]);

    await toggle.getByRole("button", { name: "Disable browser notifications" }).click();
    await page.locator("[data-testid=push-toggle][data-state=off]").waitFor();
    expect(await subscriptionsOf(userId)).toEqual([]);
    await page.close();
  });

  it("the service worker shows a delivered push as a notification with the payload's title, body and link", async () => {
    const page = await openCenter(await h.tokenFor(`provider-${randomUUID()}`));
    await page.evaluate(async () => {
      await navigator.serviceWorker.register("/sw.js");
      await navigator.serviceWorker.ready;
    });
    const cdp = await context.newCDPSession(page);
    const registrationId = new Promise<string>((resolve) => {
      cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
        const reg = registrations.find((r) => r.scopeURL === `${h.baseUrl}/` && !r.isDeleted);
        if (reg) resolve(reg.registrationId);
      });
    });
    await cdp.send("ServiceWorker.enable");
    // The fields src/channels/push.ts sends.
    const payload = {
      title: "Booking request from Ana",
      body: "Ana wants Saturday 10:00",
      url: `${h.baseUrl}/bookings/42`,
      icon: null,
      tag: randomUUID(),
      priority: "high",
      count: 1,
    };
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: h.baseUrl, registrationId: await registrationId, data: JSON.stringify(payload) });
    const shown = await page.waitForFunction(
      async (tag) => {
        const reg = await navigator.serviceWorker.getRegistration("/sw.js");
        const n = (await reg?.getNotifications({ tag }))?.[0];
        return n ? { title: n.title, body: n.body, url: (n.data as { url: string }).url, requireInteraction: n.requireInteraction } : null;
      },
      payload.tag,
      { timeout: 10_000 },
    );
    expect(await shown.jsonValue()).toEqual({ title: payload.title, body: payload.body, url: payload.url, requireInteraction: true });
    await cdp.detach();
    await page.close();
  });
});
