/**
 * Kill and restart: Herald runs as a child process (as `npm start` does) on a
 * fixed port; the open notification center loses it, notifications are
 * created while it is down (through the REST API of a second instance on the
 * same database), the server comes back on the same port, and the page
 * reconnects by itself and shows each missed notification exactly once.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/index.js";
import pg from "pg";
import { type Database, migrate, openDatabase, quoteIdent } from "../../src/db/index.js";
import { usingPostgres } from "../support/database.js";
import { TEST_SECRET, startTestHerald } from "../support/herald.js";
import { type HeraldProcess, freePort, spawnHerald } from "../support/process.js";
import { DESKTOP, badgeCount, createNotification, ensureBuilt, hasChromium, launchChromium } from "./support.js";

describe.skipIf(!hasChromium)("the notification center across a server restart", () => {
  let browser: Browser;
  let dataDir: string;
  let db: (Database & { label: string; cleanup(): Promise<void> }) | undefined;
  const schema = `browser_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const children: HeraldProcess[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    dataDir = mkdtempSync(path.join(tmpdir(), "herald-browser-"));
    // PostgreSQL: a schema of its own, shared by every instance of this test. PGlite: the child's DATA_DIR.
    if (usingPostgres) db = await openSchema();
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    await browser?.close();
    await db?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** A migrated schema of our own (its name goes into the child's DATABASE_URL). */
  async function openSchema() {
    const url = process.env.DATABASE_URL!;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await admin.end();
    const database = await openDatabase({ url, schema });
    await migrate(database);
    return Object.assign(database, {
      label: "postgres",
      async cleanup() {
        await database.close();
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
        await c.end();
      },
    });
  }

  function childEnv(port: number): Record<string, string> {
    const env: Record<string, string> = {
      WEBSOCKET_PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: "warn",
    };
    if (usingPostgres) {
      const url = new URL(process.env.DATABASE_URL!);
      url.searchParams.set("options", `-c search_path=${schema}`);
      env.DATABASE_URL = url.toString();
    }
    return env;
  }

  async function startChild(port: number): Promise<HeraldProcess> {
    const p = spawnHerald(childEnv(port));
    children.push(p);
    await p.waitFor("Herald is running at", 60_000);
    return p;
  }

  /** A second Herald on the same database, in process, for creating while the child is down. */
  async function meanwhile(fn: (baseUrl: string, adminToken: string) => Promise<void>): Promise<void> {
    const shared =
      db ??
      Object.assign(await openDatabase({ dataDir }), {
        label: "pglite",
        cleanup: async () => undefined,
      });
    const other = await startTestHerald({ sharedDatabase: shared });
    try {
      await fn(other.baseUrl, other.adminToken);
    } finally {
      await other.stop();
      if (!db) await shared.close();
    }
  }

  const state = (page: Page) => page.getByTestId("connection-state").getAttribute("data-state");

  it("reconnects by itself after a kill and restart and shows what was created meanwhile, once", async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const userId = `provider-${randomUUID()}`;
    const token = await mintToken(TEST_SECRET, { sub: userId, expiresIn: "1h" });
    const admin = await mintToken(TEST_SECRET, { sub: "admin", role: "admin", expiresIn: "1h" });

    let server = await startChild(port);
    const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
    await page.goto(`${base}/#token=${token}`);
    await page.locator("[data-testid=connection-state][data-state=open]").waitFor();
    const before = await createNotification(base, admin, { userId, title: "Before the restart" });
    await page.locator(`[data-id="${before.id}"]`).waitFor();

    // PostgreSQL survives a hard kill of its client; embedded PGlite is stopped cleanly instead.
    server.child.kill(usingPostgres ? "SIGKILL" : "SIGTERM");
    await server.exited;
    await page.locator("[data-testid=connection-state]:not([data-state=open])").waitFor();

    const missed: string[] = [];
    await meanwhile(async (otherBase, otherAdmin) => {
      for (const title of ["Created while down #1", "Created while down #2"]) {
        missed.push((await createNotification(otherBase, otherAdmin, { userId, type: "booking_request", title })).id);
      }
    });
    expect(await state(page)).not.toBe("open");

    server = await startChild(port);
    // No reload: the SDK's backoff finds the server again and syncs from its cursor.
    for (const id of missed) await page.locator(`[data-id="${id}"]`).waitFor({ timeout: 45_000 });
    await page.locator("[data-testid=connection-state][data-state=open]").waitFor();

    const ids = await page.getByTestId("notification").evaluateAll((els) => els.map((e) => e.getAttribute("data-id")));
    expect(ids.sort()).toEqual([before.id, ...missed].sort());
    await page.waitForFunction(() => document.querySelector("[data-testid=unread-badge]")?.getAttribute("data-count") === "3");
    expect(await badgeCount(page)).toBe(3);
    expect(await page.getByRole("button", { name: /Load more/ }).count()).toBe(0);

    // And it is still live on the restarted server.
    const after = await createNotification(base, admin, { userId, title: "After the restart" });
    await page.locator(`[data-id="${after.id}"]`).waitFor({ timeout: 1_000 });
    await expect(page.getByTestId("notification").count()).resolves.toBe(4);

    server.child.kill("SIGTERM");
    await server.exited;
    await page.context().close();
  });
});
