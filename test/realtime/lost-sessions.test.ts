/**
 * Sessions of a crashed instance are closed (#14.5): on Redis when the dead
 * instance's presence expires (a survivor's heartbeat notices), and on a
 * single instance (embedded database, no Redis) at start, for rows left open
 * by an earlier run of the same DATA_DIR. The kill -9 of a real process is in
 * test/reliability/instance-kill.test.ts.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RedisBus } from "../../src/bus/index.js";
import { loadConfig } from "../../src/config/index.js";
import type { Queryable } from "../../src/db/index.js";
import { createHerald } from "../../src/herald.js";
import { NotificationWebSocketServer } from "../../src/realtime/index.js";
import { TEST_SECRET, startTestHerald } from "../support/herald.js";
import { eventually } from "./helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

type Row = { disconnected_at: Date | null; disconnect_code: number | null; disconnect_reason: string | null };
const sessionRow = async (db: Queryable, id: string) =>
  (await db.query<Row>("SELECT disconnected_at, disconnect_code, disconnect_reason FROM websocket_sessions WHERE id = $1", [id]))[0];
const openRow = (db: Queryable, id: string, instanceId: string) =>
  db.query("INSERT INTO websocket_sessions (id, user_id, instance_id, connected_at) VALUES ($1, 'u-lost', $2, now() - interval '1 hour')", [id, instanceId]);

describe("sessions of a lost instance", () => {
  it("a single instance closes, at start, the sessions an earlier crashed run of its DATA_DIR left open", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "herald-lost-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // Embedded database on purpose (no DATABASE_URL/REDIS_URL): the case of one process per DATA_DIR.
    const config = loadConfig({ NODE_ENV: "test", JWT_SECRET: TEST_SECRET, DATA_DIR: dataDir, LOG_LEVEL: "silent" });
    const first = await createHerald({ config, jobs: false, serveWeb: false });
    const crashed = randomUUID();
    await openRow(first.runtime.database, crashed, "crashed-run");
    await first.stop(); // its own rows are closed; the inserted one stands for a run killed with -9

    const second = await createHerald({ config, jobs: false, serveWeb: false });
    cleanups.push(() => second.stop());
    await second.listen(0, "127.0.0.1");
    const row = await eventually(() => sessionRow(second.runtime.database, crashed), (r) => r?.disconnected_at != null);
    expect(row).toMatchObject({ disconnect_code: 1006, disconnect_reason: "instance_lost" });
    // Two embedded starts (PGlite in its thread, migrations): 22 s alone on a busy machine, over vitest's default bound.
  }, 120_000);

  it("on Redis, a survivor closes a dead instance's sessions once its presence expires, and leaves live ones open", async (ctx) => {
    if (!process.env.REDIS_URL) return ctx.skip("needs Redis (presence across instances)");
    const h = await startTestHerald();
    cleanups.push(() => h.stop());
    const prefix = `herald-lost-${randomUUID()}:`;
    const bus = new RedisBus(process.env.REDIS_URL, prefix);
    cleanups.push(() => bus.close());
    const heartbeatMs = 100;
    // The dead instance: heartbeat long past the TTL (three heartbeats), a session row still open.
    const dead = `dead-${randomUUID()}`;
    await bus.client.zadd(`${prefix}presence:instances`, Date.now() - 60_000, dead);
    const deadSession = randomUUID();
    await openRow(h.database, deadSession, dead);
    // A live instance that merely has not beaten yet in this window: its row stays open.
    const alive = `alive-${randomUUID()}`;
    await bus.client.zadd(`${prefix}presence:instances`, Date.now() + 60_000, alive);
    const aliveSession = randomUUID();
    await openRow(h.database, aliveSession, alive);

    const http = createServer();
    const survivor = new NotificationWebSocketServer(http, { ...h.herald.runtime, bus, instanceId: `survivor-${randomUUID()}` }, { presenceHeartbeatMs: heartbeatMs });
    await survivor.start();
    cleanups.push(() => survivor.close());
    const row = await eventually(() => sessionRow(h.database, deadSession), (r) => r?.disconnected_at != null);
    expect(row).toMatchObject({ disconnect_code: 1006, disconnect_reason: "instance_lost" });
    expect((await sessionRow(h.database, aliveSession))!.disconnected_at).toBeNull();
    // Forgotten once handled: no longer in the instance set.
    expect(await bus.client.zscore(`${prefix}presence:instances`, dead)).toBeNull();
  });
});
