/**
 * Shared pieces of the browser tests: Chromium (skipped with a clear message
 * when the binary is absent), a built web/dist, notification creation through
 * the admin REST API, and screenshots into artifacts/.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { ensureWebBuild, webDistDir } from "../../src/http/routes/web.js";

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
