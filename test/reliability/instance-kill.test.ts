/**
 * One of two instances (real processes sharing PostgreSQL and a private
 * Redis) killed with SIGKILL: its users' clients reconnect to the other one
 * (the test routes new connections like a load balancer would), see what was
 * created before, during and after the kill exactly once, and the survivor's
 * cluster-wide presence forgets the dead instance's connections within the
 * presence TTL (three 10 s heartbeats).
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Created } from "../support/bodies.js";
import { fault, record } from "./support/figures.js";
import { type HeraldNode, adminToken, eventually, kill9, providerToken, scratchDatabase, startNode, stopNode, tempDir } from "./support/processes.js";
import { startPrivateRedis } from "./support/private-servers.js";
import { call } from "./support/rest.js";
import { type TrackedUser, trackUser } from "./support/tracking-client.js";

const USERS = Array.from({ length: 6 }, (_, i) => `kill-user-${i}`);
const PRESENCE_TTL_MS = 30_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("one of two instances killed", () => {
  it("its users reconnect to the other, see every notification once, and its presence clears within the TTL", async (ctx) => {
    if (!process.env.DATABASE_URL) return ctx.skip("needs PostgreSQL (two processes share it)");
    const redis = await startPrivateRedis();
    if (typeof redis === "string") return ctx.skip(`private Redis unavailable (${redis})`);
    cleanups.push(() => redis.kill());
    const db = await scratchDatabase(process.env.DATABASE_URL);
    cleanups.push(db.drop);
    const nodes: HeraldNode[] = [];
    for (let i = 0; i < 2; i++) {
      const dir = tempDir();
      cleanups.push(dir.remove);
      const node = await startNode({ DATABASE_URL: db.url, REDIS_URL: redis.url, DATA_DIR: dir.dir });
      cleanups.push(() => stopNode(node));
      nodes.push(node);
    }
    const [a, b] = nodes as [HeraldNode, HeraldNode];
    const admin = await adminToken();
    const connectionsOnB = async () =>
      (await call<{ connectedClients: number; connectedProviders: string[] }>(b.baseUrl, "GET", "/api/admin/connections", { token: admin })).body;

    // Everybody starts on A.
    let route = a.wsUrl;
    const clients: TrackedUser[] = await Promise.all(USERS.map(async (u) => trackUser(() => route, u, await providerToken(u))));
    cleanups.push(() => {
      for (const c of clients) c.client.close();
    });
    await eventually(() => clients.every((c) => c.client.state === "open"), 20_000, "clients open on A");
    await eventually(async () => (await connectionsOnB()).connectedClients === USERS.length, 20_000, "B to see A's connections");

    const accepted = new Map<string, string>(); // id -> user
    const create = async (phase: string) => {
      for (const u of USERS) {
        const r = await call<Created>(b.baseUrl, "POST", "/api/notifications", { token: admin, body: { userId: u, type: "new_message", title: phase, message: "m" } });
        expect(r.status).toBe(201);
        accepted.set(r.body.notification.id, u);
      }
    };
    const missing = () => clients.flatMap((c) => [...accepted].filter(([id, u]) => u === c.userId && !c.shown.has(id)).map(([id]) => id));

    await create("before");
    await eventually(() => missing().length === 0, 20_000, "delivery through A");

    route = b.wsUrl;
    const killedAt = Date.now();
    await kill9(a);
    fault("kill9_instance");
    await create("during");
    await eventually(() => clients.every((c) => c.closes.length > 0 && c.client.state === "open"), 30_000, "clients to reconnect to B");
    await create("after");
    await eventually(() => missing().length === 0, 30_000, "catch-up on B");

    // A's presence entries expire; B then counts only its own connections.
    await eventually(
      async () => {
        const now = await connectionsOnB();
        return now.connectedClients === USERS.length && now.connectedProviders.length === USERS.length;
      },
      PRESENCE_TTL_MS + 15_000,
      "A's presence to expire",
    );
    const clearedAfterMs = Date.now() - killedAt;

    const userDuplicates = clients.reduce((n, c) => n + c.userDuplicates(), 0);
    const wireDuplicates = clients.reduce((n, c) => n + c.wireDuplicates(), 0);
    record({ checked: accepted.size, lost: missing().length, userDuplicates, wireDuplicates });
    expect(missing()).toEqual([]);
    expect(userDuplicates).toBe(0);
    // Within the TTL plus one heartbeat of B (the sweep that notices it).
    expect(clearedAfterMs).toBeLessThanOrEqual(PRESENCE_TTL_MS + 10_000 + 5_000);
    expect((await connectionsOnB()).connectedProviders.sort()).toEqual([...USERS].sort());
  });
});

describe("the sessions of a killed instance", () => {
  it("are closed (instance_lost) and leave the admin counts within the presence TTL; the survivor's stay open", async (ctx) => {
    if (!process.env.DATABASE_URL) return ctx.skip("needs PostgreSQL (two processes share it)");
    const redis = await startPrivateRedis();
    if (typeof redis === "string") return ctx.skip(`private Redis unavailable (${redis})`);
    cleanups.push(() => redis.kill());
    const db = await scratchDatabase(process.env.DATABASE_URL);
    cleanups.push(db.drop);
    const heartbeatMs = 500; // TTL 1.5 s
    const nodes: HeraldNode[] = [];
    for (let i = 0; i < 2; i++) {
      const dir = tempDir();
      cleanups.push(dir.remove);
      const node = await startNode({ DATABASE_URL: db.url, REDIS_URL: redis.url, DATA_DIR: dir.dir, HERALD_PRESENCE_HEARTBEAT_MS: String(heartbeatMs), HERALD_DEMO_TOKENS: "true" });
      cleanups.push(() => stopNode(node));
      nodes.push(node);
    }
    const [a, b] = nodes as [HeraldNode, HeraldNode];
    const admin = await adminToken();
    const counts = async () => (await call<{ connectedClients: number; connectedProviders: string[] }>(b.baseUrl, "GET", "/api/admin/connections", { token: admin })).body;
    const open = async (node: HeraldNode, user: string) => {
      const ws = new WebSocket(`${node.wsUrl}/ws?token=${encodeURIComponent(await providerToken(user))}`);
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      ws.on("error", () => undefined);
      cleanups.push(() => ws.terminate());
      return ws;
    };
    for (let i = 0; i < 5; i++) await open(a, `lost-${i}`);
    await open(b, "survivor-user");
    const sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    cleanups.push(() => sql.end());
    const openRows = async () =>
      (await sql.query<{ user_id: string }>("SELECT user_id FROM websocket_sessions WHERE disconnected_at IS NULL ORDER BY user_id")).rows.map((r) => r.user_id);
    await eventually(async () => (await openRows()).length === 6 && (await counts()).connectedClients === 6, 20_000, "6 sessions written and counted");

    const killedAt = Date.now();
    await kill9(a);
    fault("kill9_instance");
    await eventually(async () => (await openRows()).length === 1, 30_000, "A's sessions closed");
    const closedAfterMs = Date.now() - killedAt;
    await eventually(async () => (await counts()).connectedClients === 1, 30_000, "A's connections uncounted");
    const countedAfterMs = Date.now() - killedAt;
    console.log(`killed instance: sessions closed after ${closedAfterMs} ms, admin count right after ${countedAfterMs} ms (presence TTL ${3 * heartbeatMs} ms)`);
    expect(await openRows()).toEqual(["survivor-user"]);
    const lost = await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM websocket_sessions WHERE disconnect_reason = 'instance_lost' AND disconnect_code = 1006");
    expect(lost.rows[0]!.n).toBe(5);
    expect((await counts()).connectedProviders).toEqual(["survivor-user"]);
    // TTL plus one survivor heartbeat, with room for a loaded machine.
    expect(closedAfterMs).toBeLessThanOrEqual(3 * heartbeatMs + heartbeatMs + 5_000);
  });
});
