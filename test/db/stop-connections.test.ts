/**
 * herald.stop() closes every PostgreSQL connection Herald opened (main pool,
 * writer pools, LISTEN), even with work in flight at stop: WebSocket clients
 * closing, creations being written, e-mail and SMS sends due now that succeed
 * or fail. Herald opens its own database here (a scratch one, with an
 * application_name of its own), as in production, so the runtime closes it.
 * The bench soak found two left open right after stop (and a DROP DATABASE
 * then hit them in Herald's pool). PostgreSQL only.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { mintToken } from "../../src/auth/index.js";
import { RedisBus } from "../../src/bus/index.js";
import { enqueueOutOfApp } from "../../src/channels/index.js";
import { loadConfig } from "../../src/config/index.js";
import { createHerald } from "../../src/herald.js";
import { type SmsReceiver, startSmsReceiver } from "../channels/support.js";
import { scratchDatabase } from "../reliability/support/processes.js";
import { TEST_SECRET } from "../support/herald.js";

const url = process.env.DATABASE_URL;
const ROUNDS = 10;
const USERS = 20;

let admin: pg.Client;
let sms: SmsReceiver;

beforeAll(async () => {
  if (!url) return;
  admin = new pg.Client({ connectionString: url });
  await admin.connect();
  // Every other SMS fails (retry later), the rest succeed.
  sms = await startSmsReceiver((n) => (n % 2 === 0 ? 200 : 503));
});
afterAll(async () => {
  await admin?.end();
  await sms?.close();
});

async function openCount(appName: string): Promise<number> {
  const [row] = (await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [appName])).rows;
  return Number(row!.n);
}

async function round(): Promise<{ open: number; during: number }> {
  const id = randomBytes(4).toString("hex");
  const appName = `herald-stop-${id}`;
  const scratch = await scratchDatabase(url!);
  const dataDir = mkdtempSync(path.join(tmpdir(), "herald-stop-"));
  const dbUrl = new URL(scratch.url);
  dbUrl.searchParams.set("application_name", appName);
  const bus = process.env.REDIS_URL ? new RedisBus(process.env.REDIS_URL, `herald-stop-${id}:`) : undefined;
  try {
    const config = loadConfig({
      NODE_ENV: "test",
      JWT_SECRET: TEST_SECRET,
      DATA_DIR: dataDir,
      LOG_LEVEL: "silent",
      HERALD_API_KEYS: "test-api-key",
      DATABASE_URL: dbUrl.toString(),
      SMS_WEBHOOK_URL: sms.url,
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    });
    const herald = await createHerald({ config, jobs: true, serveWeb: false, ...(bus ? { bus } : {}) });
    const baseUrl = await herald.listen(0, "127.0.0.1");
    const db = herald.runtime.database;
    const users = Array.from({ length: USERS }, (_, i) => `stop-${id}-${i}`);
    // Half with no phone: their SMS fails for good (markFinal), the others' succeed or retry.
    await db.query(
      "INSERT INTO users (id, email, phone, timezone) SELECT $1 || g, $1 || g || '@stop.test', CASE WHEN g % 2 = 0 THEN '+1555000' || lpad(g::text, 4, '0') END, 'UTC' FROM generate_series(0, $2 - 1) g",
      [`stop-${id}-`, USERS],
    );
    const sockets = await Promise.all(
      users.map(async (user) => {
        const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/ws?token=${await mintToken(TEST_SECRET, { sub: user, expiresIn: "1h" })}`, { perMessageDeflate: false });
        ws.on("error", () => undefined);
        await new Promise<void>((resolve, reject) => {
          ws.once("open", () => resolve());
          ws.once("error", reject);
        });
        return ws;
      }),
    );
    // Work in flight at stop: creations (pushed on the sockets), and e-mail and SMS sends due now.
    const creating = users.map((user, i) =>
      fetch(`${baseUrl}/api/notifications`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "test-api-key" },
        body: JSON.stringify({ userId: user, type: "new_message", priority: "high", title: `t${i}`, message: "m" }),
      })
        .then((res) => res.text())
        .catch(() => undefined),
    );
    const enqueueing = (async () => {
      for (const user of users) {
        const [n] = await db.query<{ id: string }>("INSERT INTO notifications (user_id, type, priority, title, message) VALUES ($1, 'new_message', 'high', 'q', 'm') RETURNING id", [user]);
        await db.transaction((tx) => enqueueOutOfApp(tx, { id: n!.id, userId: user }, { inApp: true, outOfApp: { email: { mode: "now" }, sms: { mode: "now" } } }, { now: new Date() }));
      }
    })().catch(() => undefined);
    // Stop once the worker has something to record, with the sockets closing at the same time.
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notification_queue WHERE status <> 'pending'").catch(() => [{ n: 0 }]);
      if (row!.n > 0) break;
    }
    for (const ws of sockets) ws.close();
    const during = await openCount(appName);
    await herald.stop();
    // Counted at once, no waiting: a backend leaves pg_stat_activity before it closes its socket
    // (PostgreSQL's exit clears the row, then closes the connection), so a stop that waited for its
    // connections to close finds none; one that only asked them to close (pg's Pool.end()) may.
    const open = await openCount(appName);
    await Promise.all([...creating, enqueueing]);
    return { open, during };
  } finally {
    await bus?.close();
    await scratch.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe.skipIf(!url)("herald.stop() and PostgreSQL connections", () => {
  it(`leaves none open with sockets, creations and sends in flight (${ROUNDS} rounds)`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const { open, during } = await round();
      expect(during, "connections open while running (the test saw Herald's)").toBeGreaterThan(0);
      expect(open, `round ${i + 1}: connections still open after herald.stop()`).toBe(0);
    }
  }, 120_000);
});
