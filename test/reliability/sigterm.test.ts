/**
 * SIGTERM under load: the process drains and exits 0 (main.ts forces exit 1
 * after 10 s, so 0 also means "within seconds"); every creation answered
 * 2xx is stored, every analytics event answered 202 is in the table, every
 * ack the server had processed is written as delivered, and no queue row is
 * left claimed under a lease.
 */
import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type Database, openDatabase } from "../../src/db/index.js";
import type { Created } from "../support/bodies.js";
import { fault, record } from "./support/figures.js";
import { API_KEY, type HeraldNode, adminToken, providerToken, scratchDatabase, startNode, stopNode, tempDir } from "./support/processes.js";
import { call } from "./support/rest.js";

const USERS = Array.from({ length: 6 }, (_, i) => `term-user-${i}`);
const ONLINE = USERS.slice(0, 3);

/** A raw client that acks every notification and can prove the server processed its acks (a ping answered after them). */
function acker(wsUrl: string, token: string) {
  const ws = new WebSocket(`${wsUrl}/ws?token=${encodeURIComponent(token)}`);
  const sentAcks: string[] = [];
  let confirmed: string[] = [];
  const pongWaiters: (() => void)[] = [];
  ws.on("message", (raw) => {
    const m = JSON.parse(raw.toString());
    const ids: string[] = m.type === "notification" ? [m.notification.id] : m.type === "sync" ? m.notifications.map((n: { id: string }) => n.id) : [];
    for (const id of ids) {
      ws.send(JSON.stringify({ type: "ack", id }));
      sentAcks.push(id);
    }
    if (m.type === "pong") pongWaiters.shift()?.();
  });
  ws.on("error", () => undefined);
  return {
    opened: new Promise((r) => ws.once("open", r)),
    /** Acks sent before a ping the server answered: processed, in order. */
    async confirm(): Promise<string[]> {
      const upTo = sentAcks.length;
      await new Promise<void>((resolve) => {
        pongWaiters.push(resolve);
        ws.send(JSON.stringify({ type: "ping" }));
      });
      confirmed = sentAcks.slice(0, upTo);
      return confirmed;
    },
    close: () => ws.terminate(),
  };
}

describe("SIGTERM under load", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("exits 0 with analytics and ack batches flushed and no queue row left claimed", async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    const env: Record<string, string> = { DATA_DIR: dir.dir };
    let pgUrl: string | undefined;
    if (process.env.DATABASE_URL) {
      const db = await scratchDatabase(process.env.DATABASE_URL);
      cleanups.push(db.drop);
      env.DATABASE_URL = pgUrl = db.url;
    }
    const node: HeraldNode = await startNode(env);
    cleanups.push(() => stopNode(node));
    const admin = await adminToken();
    const tokens = new Map<string, string>();
    for (const u of USERS) {
      tokens.set(u, await providerToken(u));
      expect((await call(node.baseUrl, "PUT", `/api/users/${u}`, { token: API_KEY, body: { email: `${u}@example.com` } })).status).toBe(200);
    }
    const clients = ONLINE.map((u) => acker(node.wsUrl, tokens.get(u)!));
    cleanups.push(() => {
      for (const c of clients) c.close();
    });
    await Promise.all(clients.map((c) => c.opened));

    const created = new Map<string, string>(); // id -> user
    const events: [string, string, string][] = []; // notificationId, userId, eventType answered 202
    let stop = false;
    let n = 0;
    const creator = async () => {
      while (!stop) {
        const userId = USERS[n++ % USERS.length]!;
        const a = await call<Created>(node.baseUrl, "POST", "/api/notifications", { token: admin, body: { userId, type: "booking_request", title: `b${n}`, message: "m" } }).catch(() => undefined);
        if (a?.status === 201) created.set(a.body.notification.id, userId);
        else if (a && a.status >= 500 && a.status !== 503) throw new Error(`creation answered ${a.status}`);
      }
    };
    const tracker = async () => {
      while (!stop) {
        const entries = [...created.entries()];
        const pick = entries[Math.floor(Math.random() * entries.length)];
        if (!pick) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const eventType = Math.random() < 0.5 ? "opened" : "clicked";
        const a = await call(node.baseUrl, "POST", "/api/analytics/events", { token: tokens.get(pick[1])!, body: { notificationId: pick[0], eventType } }).catch(() => undefined);
        if (a?.status === 202) events.push([pick[0], pick[1], eventType]);
      }
    };
    const load = Promise.all([creator(), creator(), creator(), tracker(), tracker()]);
    // Let the load run until a good number of creations and events have been answered.
    while (created.size < 80 || events.length < 40) await new Promise((r) => setTimeout(r, 50));
    const acked = (await Promise.all(clients.map((c) => c.confirm()))).flat();

    node.proc.child.kill("SIGTERM");
    fault("sigterm");
    const exit = await node.proc.exited;
    stop = true;
    await load;
    expect(exit).toEqual({ code: 0, signal: null });

    const db: Database = pgUrl ? await openDatabase({ url: pgUrl, poolSize: 2 }) : await openDatabase({ dataDir: dir.dir });
    cleanups.push(() => db.close());
    const storedIds = new Set((await db.query<{ id: string }>("SELECT id FROM notifications")).map((r) => r.id));
    const lost = [...created.keys()].filter((id) => !storedIds.has(id));
    const eventRows = await db.query<{ k: string }>("SELECT notification_id || '|' || user_id || '|' || event_type AS k FROM analytics_events");
    const eventKeys = new Set(eventRows.map((r) => r.k));
    const lostEvents = events.filter(([id, u, t]) => !eventKeys.has(`${id}|${u}|${t}`));
    const delivered = new Set(
      (await db.query<{ id: string }>("SELECT id FROM notifications WHERE delivery_status = 'delivered'")).map((r) => r.id),
    );
    const lostAcks = acked.filter((id) => !delivered.has(id));
    const queued = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM notification_queue"))[0]!.n;
    const claimed = await db.query("SELECT id, status, locked_by FROM notification_queue WHERE status = 'processing' OR locked_by IS NOT NULL");
    record({ checked: created.size, lost: lost.length });

    expect(lost).toEqual([]);
    expect(events.length).toBeGreaterThan(0);
    expect(lostEvents).toEqual([]);
    expect(acked.length).toBeGreaterThan(0);
    expect(lostAcks).toEqual([]);
    expect(queued).toBeGreaterThan(0); // the e-mail worker had work in hand
    expect(claimed).toEqual([]);
  });
});
