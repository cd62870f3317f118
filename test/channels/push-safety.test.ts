/**
 * Push sends at send time (issues 15.3 and 15.4), with real loopback servers:
 * a private destination is refused even if it got into the table, a redirect
 * is never followed, one user's subscriptions go out in parallel under one
 * deadline, and an origin that keeps not answering is paused (circuit
 * breaker) with its jobs deferred, not retried at full cost.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PushChannel, loadVapidKeys, savePushSubscription } from "../../src/channels/index.js";
import { loadConfig } from "../../src/config/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { drain, enqueue, makeWorker, queueRows } from "./harness.js";
import { seedNotification, seedUser, startPushService } from "./support.js";

const APP_URL = "https://app.example.test";
const pushNow = { inApp: true, outOfApp: { push: { mode: "now" as const } } };
let db: TestDatabase;
const vapidDir = mkdtempSync(path.join(tmpdir(), "herald-push-safety-"));
const vapid = loadVapidKeys(loadConfig({ NODE_ENV: "test", DATA_DIR: vapidDir }));
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.cleanup();
  rmSync(vapidDir, { recursive: true, force: true });
});

/** A server that records requests and answers with `handler` (or never, when it returns false). */
async function server(handler: (req: IncomingMessage, res: ServerResponse) => boolean) {
  const seen: string[] = [];
  const open = new Set<ServerResponse>();
  const s: Server = createServer((req, res) => {
    seen.push(req.url ?? "");
    req.resume();
    if (!handler(req, res)) open.add(res);
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    origin,
    seen,
    open,
    close: () => {
      s.closeAllConnections();
      return new Promise<void>((r) => s.close(() => r()));
    },
  };
}

/** A `server` handler that answers every request with `status`, `headers` and `body`. */
const answer =
  (status: number, headers: Record<string, string> = {}, body?: string) =>
  (_req: IncomingMessage, res: ServerResponse): boolean => {
    res.writeHead(status, headers).end(body);
    return true;
  };

const keysOf = (svc: Awaited<ReturnType<typeof startPushService>>, name: string) => svc.subscribe(name).keys;

describe(`push sends (${process.env.DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("a loopback endpoint already in the table is refused at send time without a request (no allowPrivate)", async () => {
    const target = await server(answer(201));
    const svc = await startPushService(() => vapid.publicKey);
    try {
      await seedUser(db, { id: "u-ssrf" });
      await savePushSubscription(db, "u-ssrf", { endpoint: `${target.origin}/internal`, keys: keysOf(svc, "x") });
      const clock = new ManualClock("2030-01-07T10:00:00Z");
      const { worker } = makeWorker(db, { push: new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger }) }, clock);
      const id = await seedNotification(db, { userId: "u-ssrf" });
      await enqueue(db, { id, userId: "u-ssrf" }, pushNow, clock.now());
      await drain(worker);
      expect(target.seen).toEqual([]);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "failed" });
      expect(row!.last_error).toMatch(/^destination_refused/);
    } finally {
      await target.close();
      await svc.close();
    }
  });

  it("a host name that resolves to loopback is refused inside the connection's lookup at send time, without a request", async () => {
    const target = await server(answer(201));
    const svc = await startPushService(() => vapid.publicKey);
    try {
      await seedUser(db, { id: "u-ssrf-name" });
      const port = new URL(target.origin).port;
      // Got into the table some other way (registered before the rule, or DNS answered otherwise then).
      for (const host of ["localhost", "LOCALHOST"]) {
        await savePushSubscription(db, "u-ssrf-name", { endpoint: `http://${host}:${port}/internal`, keys: keysOf(svc, host) });
      }
      const clock = new ManualClock("2030-01-07T10:00:00Z");
      const { worker } = makeWorker(db, { push: new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger }) }, clock);
      const id = await seedNotification(db, { userId: "u-ssrf-name" });
      await enqueue(db, { id, userId: "u-ssrf-name" }, pushNow, clock.now());
      await drain(worker);
      expect(target.seen).toEqual([]);
      const [row] = await queueRows(db, id);
      expect(row).toMatchObject({ status: "failed" });
      expect(row!.last_error).toMatch(/^destination_refused/);
    } finally {
      await target.close();
      await svc.close();
    }
  });

  it("a 302 from a push endpoint is not followed", async () => {
    const internal = await server(answer(200, {}, "secret"));
    const redirector = await server(answer(302, { location: `${internal.origin}/admin` }));
    const svc = await startPushService(() => vapid.publicKey);
    try {
      await seedUser(db, { id: "u-redirect" });
      await savePushSubscription(db, "u-redirect", { endpoint: `${redirector.origin}/push/r`, keys: keysOf(svc, "r") });
      const clock = new ManualClock("2030-01-07T10:00:00Z");
      const push = new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger, allowPrivate: true });
      const { worker } = makeWorker(db, { push }, clock);
      const id = await seedNotification(db, { userId: "u-redirect" });
      await enqueue(db, { id, userId: "u-redirect" }, pushNow, clock.now());
      await drain(worker);
      expect(redirector.seen).toEqual(["/push/r"]);
      expect(internal.seen).toEqual([]);
      expect((await queueRows(db, id))[0]!.last_error).toMatch(/^http_302/);
    } finally {
      await internal.close();
      await redirector.close();
      await svc.close();
    }
  });

  it("six endpoints that never answer are tried at once under one deadline; then the origin is paused and the next job deferred without a request", async () => {
    const hang = await server(() => false);
    const svc = await startPushService(() => vapid.publicKey);
    try {
      await seedUser(db, { id: "u-hang" });
      for (let i = 0; i < 6; i++) await savePushSubscription(db, "u-hang", { endpoint: `${hang.origin}/push/${i}`, keys: keysOf(svc, `h${i}`) });
      const clock = new ManualClock("2030-01-07T10:00:00Z");
      const push = new PushChannel({ database: db, vapid, appUrl: APP_URL, logger: silentLogger, allowPrivate: true, clock, timeoutMs: 2_000, breaker: { threshold: 3, cooldownMs: 60_000 } });
      const { worker } = makeWorker(db, { push }, clock);
      const first = await seedNotification(db, { userId: "u-hang", title: "first" });
      await enqueue(db, { id: first, userId: "u-hang" }, pushNow, clock.now());
      const round = worker.runOnce();
      // All six requests are open together before any deadline passes: parallel, not in turn.
      await expect.poll(() => hang.open.size, { timeout: 1_500, interval: 10 }).toBe(6);
      await round;
      expect((await queueRows(db, first))[0]).toMatchObject({ status: "pending", attempts: 1 });

      const second = await seedNotification(db, { userId: "u-hang", title: "second" });
      await enqueue(db, { id: second, userId: "u-hang" }, pushNow, clock.now());
      expect(await worker.runOnce()).toBe(1);
      expect(hang.seen).toHaveLength(6); // the paused origin got no new request
      const [row] = await queueRows(db, second);
      expect(row).toMatchObject({ status: "pending", attempts: 0 });
      expect(row!.last_error).toMatch(/^circuit_open/);
      expect(new Date(row!.next_retry_at).getTime()).toBe(clock.now().getTime() + 60_000);
    } finally {
      await hang.close();
      await svc.close();
    }
  });
});
