/**
 * Shared pieces of the browser tests: Chromium (skipped with a clear message
 * when the binary is absent), a built web/dist, notification creation through
 * the admin REST API, analytics seeded through the real flow, screenshots
 * into artifacts/ and axe-core audits.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import axe from "axe-core";
import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";
import { WebSocket } from "ws";
import { HeraldClient, type WebSocketConstructor } from "../../src/client/index.js";
import { ensureWebBuild, webDistDir } from "../../src/http/routes/web.js";
import type { Headline } from "../../src/react/analyticsData.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
}

export const artifactsDir = path.resolve("artifacts");

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The tests serve the real build; a checkout without one gets it built once here. */
export async function ensureBuilt(): Promise<void> {
  const ok = await ensureWebBuild({ info: () => undefined, warn: (m) => console.warn(m) });
  if (!ok || !existsSync(path.join(webDistDir, "index.html"))) throw new Error("web/dist could not be built: run npm run build");
}

export interface BrowserHerald {
  h: TestHerald;
  browser: Browser;
  /** A desktop-sized context for the file's pages. */
  context: BrowserContext;
  stop(): Promise<void>;
}

/** What a browser test file starts in beforeAll: a Herald serving the built UI, Chromium and a desktop context. */
export async function startBrowserHerald(): Promise<BrowserHerald> {
  await ensureBuilt();
  const h = await startTestHerald({ serveWeb: true });
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: DESKTOP });
  return {
    h,
    browser,
    context,
    async stop() {
      await context.close();
      await browser.close();
      await h.stop();
    },
  };
}

/** The notification center signed in with `token`, once its WebSocket is open. */
export async function openCenter(context: BrowserContext, baseUrl: string, token: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${baseUrl}/#token=${token}`);
  await page.locator("[data-testid=connection-state][data-state=open]").waitFor();
  return page;
}

export interface CreatedNotification {
  id: string;
  title: string;
  seq: number;
}

export async function createNotification(
  baseUrl: string,
  adminToken: string,
  body: { userId: string; type?: string; title: string; message?: string; priority?: string; actionUrl?: string; actionLabel?: string },
): Promise<CreatedNotification> {
  const res = await fetch(`${baseUrl}/api/notifications`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ type: "new_message", message: `Body of ${body.title}`, ...body }),
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { notification: CreatedNotification }).notification;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, `${name}.png`), fullPage: true });
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** The badge's count, 0 when no badge is shown. */
export async function badgeCount(page: Page): Promise<number> {
  const badge = page.getByTestId("unread-badge");
  if ((await badge.count()) === 0) return 0;
  return Number(await badge.getAttribute("data-count"));
}

/** The WCAG 2.1 A and AA rules: what the audit in issue #19 measured. */
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/**
 * Runs axe-core in the page and returns one line per violating element
 * (rule, impact, selector, what to fix), so a failing expectation lists them.
 * The source goes in through evaluate, which the page's CSP (script-src 'self') does not block.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axe.source);
  const violations = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }).then((r) => r.violations),
    WCAG_TAGS,
  );
  return violations.flatMap((v) =>
    v.nodes.map((n) => `${v.id} (${v.impact ?? "?"}) ${n.target.join(" ")}: ${n.failureSummary?.replace(/\s+/g, " ") ?? v.help}`),
  );
}

declare global {
  interface Window {
    axe: typeof axe;
  }
}

/** GET /api/analytics/overview: the dashboard's headline numbers. */
export type AnalyticsOverview = Headline;

export async function analyticsOverview(h: TestHerald): Promise<AnalyticsOverview> {
  const res = await fetch(`${h.baseUrl}/api/analytics/overview?days=30`, { headers: { authorization: `Bearer ${h.adminToken}` } });
  return (await res.json()) as AnalyticsOverview;
}

/** Events are batched off the request path: poll the API with a deadline until `ok`. */
export async function untilAnalytics(h: TestHerald, ok: (o: AnalyticsOverview) => boolean): Promise<AnalyticsOverview> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const o = await analyticsOverview(h);
    if (ok(o)) return o;
    if (Date.now() > deadline) throw new Error(`analytics never reached the expected state: ${JSON.stringify(o)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Analytics from the real flow: one notification per type, delivered to a
 * connected SDK client (its acks are the `delivered` events), the first four
 * read and the first two clicked by the provider. The client stays connected
 * (a notification counts as sent when pushed to a live connection): close it.
 */
export async function seedEngagement(h: TestHerald, userId: string, types: string[]): Promise<{ created: string[]; client: HeraldClient }> {
  const token = await h.tokenFor(userId);
  const client = new HeraldClient({ url: `${h.wsUrl}/ws`, token, WebSocket: WebSocket as unknown as WebSocketConstructor });
  const received = new Set<string>();
  // The user is new: every notification it receives is one of ours.
  const allReceived = new Promise<void>((resolve) =>
    client.on("notification", (n) => {
      received.add(n.id);
      if (received.size === types.length) resolve();
    }),
  );
  client.connect();
  await client.once("state");
  const before = await analyticsOverview(h);
  const created: string[] = [];
  for (const [i, type] of types.entries()) {
    created.push((await createNotification(h.baseUrl, h.adminToken, { userId, type, title: `${type} #${i}` })).id);
  }
  await allReceived;
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  for (const id of created.slice(0, 4)) {
    await fetch(`${h.baseUrl}/api/notifications/${id}`, { method: "PATCH", headers: auth, body: JSON.stringify({ read: true }) });
  }
  for (const id of created.slice(0, 2)) {
    const res = await fetch(`${h.baseUrl}/api/analytics/events`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ notificationId: id, eventType: "clicked", metadata: { browser: "test" } }),
    });
    if (res.status !== 202) throw new Error(`click event refused: ${res.status} ${await res.text()}`);
  }
  const n = types.length;
  await untilAnalytics(
    h,
    (o) =>
      o.sent >= before.sent + n &&
      o.delivered >= before.delivered + n &&
      o.opened >= before.opened + Math.min(4, n) &&
      o.clicked >= before.clicked + Math.min(2, n),
  );
  return { created, client };
}
