/**
 * Two instances on one database: an erasure asked of instance A closes the
 * user's connection held by instance B (4410) and leaves no row of theirs;
 * with Redis, preferences an admin changes through A are what B serves next.
 * Over a shared MemoryBus, and over real Redis when REDIS_URL is set.
 */
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bus, MemoryBus } from "../../src/bus/index.js";
import type { NearCache } from "../../src/cache/index.js";
import { CloseCodes } from "../../src/protocol/index.js";
import { watchInvalidation } from "../cache/invalidations.js";
import { api } from "../notifications/api.js";
import type { NotificationPreferences } from "../support/bodies.js";
import { usingRedis } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

const modes = [{ name: "a shared MemoryBus", redis: false }, ...(usingRedis ? [{ name: "Redis", redis: true }] : [])];

describe.each(modes)("admin per-user routes on two instances over $name", (mode) => {
  let a: TestHerald;
  let b: TestHerald;
  let sharedBus: Bus | undefined;

  beforeAll(async () => {
    const busPrefix = `herald-users-${randomUUID()}:`;
    sharedBus = mode.redis ? undefined : new MemoryBus();
    const common = mode.redis ? { busPrefix } : { bus: sharedBus };
    a = await startTestHerald(common);
    b = await startTestHerald({ ...common, sharedDatabase: a.database });
  }, 120_000); // more than one Herald start's worth of work: embedded PGlite on a busy machine needs more than the default minute
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await sharedBus?.close();
  });

  it("DELETE through A closes the user's socket on B with 4410, and no row of the user is left", async () => {
    const userId = `cluster-${randomUUID()}`;
    expect((await api(a)("PUT", `/api/users/${userId}`, { token: a.adminToken, body: { email: `${userId}@example.test` } })).status).toBe(200);
    const ws = new WebSocket(`${b.wsUrl}/ws?token=${encodeURIComponent(await b.tokenFor(userId))}`);
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    // B's session row is written (another instance's buffer is not drained by A: docs/auth.md).
    await b.herald.realtime.flushDeliveryLog();
    expect(await a.database.query("SELECT 1 FROM websocket_sessions WHERE user_id = $1", [userId])).toHaveLength(1);

    expect((await api(a)("DELETE", `/api/users/${userId}`, { token: a.adminToken })).status).toBe(204);
    expect(await closed).toBe(CloseCodes.userErased);
    await b.herald.realtime.flushDeliveryLog();
    expect(await a.database.query("SELECT 1 FROM websocket_sessions WHERE user_id = $1", [userId])).toHaveLength(0);
    expect(await a.database.query("SELECT 1 FROM users WHERE id = $1", [userId])).toHaveLength(0);
  });

  it.skipIf(!mode.redis)("PATCH /api/users/{id}/preferences through A is what B serves once A's invalidation reached B, though B had cached the old value", async () => {
    const userId = `cluster-${randomUUID()}`;
    const key = `prefs:${userId}`;
    const filled = await watchInvalidation(b.herald.runtime.bus, b.herald.runtime.instanceId, key);
    expect((await api(b)<NotificationPreferences>("GET", `/api/users/${userId}/preferences`, { token: b.adminToken })).body.soundVolume).toBe(70);
    await filled.arrived;
    expect((await api(b)<NotificationPreferences>("GET", `/api/users/${userId}/preferences`, { token: b.adminToken })).body.soundVolume).toBe(70); // B's local copy
    const updated = await watchInvalidation(b.herald.runtime.bus, a.herald.runtime.instanceId, key);
    expect((await api(a)("PATCH", `/api/users/${userId}/preferences`, { token: a.adminToken, body: { soundVolume: 33 } })).status).toBe(200);
    await updated.arrived;
    expect((await api(b)<NotificationPreferences>("GET", `/api/users/${userId}/preferences`, { token: b.adminToken })).body.soundVolume).toBe(33);
    expect((await api(b)<NotificationPreferences>("GET", "/api/preferences", { token: await b.tokenFor(userId) })).body.soundVolume).toBe(33);
  });

  it.skipIf(!mode.redis)("an erasure through A drops the user's preferences, time zone and recipient facts that B held locally", async () => {
    const userId = `cluster-${randomUUID()}`;
    const keys = [`prefs:${userId}`, `tz:${userId}`, `recipient:${userId}`];
    const admin = { token: a.adminToken };
    // A's changes must have reached B before B fills: a change of another instance heard just after
    // B's own fill deletes it again (it may have overtaken the change), and B would then read nothing.
    const changed = await Promise.all(keys.map((key) => watchInvalidation(b.herald.runtime.bus, a.herald.runtime.instanceId, key)));
    expect((await api(a)("PUT", `/api/users/${userId}`, { ...admin, body: { timezone: "Asia/Tokyo" } })).status).toBe(200);
    expect((await api(a)("PATCH", `/api/users/${userId}/preferences`, { ...admin, body: { soundVolume: 33 } })).status).toBe(200);
    await Promise.all(changed.map((c) => c.arrived));
    // B holds a local copy of each key: filled in Redis by B, then read back by B once its own invalidation has come back.
    const cacheB = b.herald.runtime.cache;
    for (const [key, value] of [[keys[0]!, { soundVolume: 33 }], [keys[1]!, "Asia/Tokyo"], [keys[2]!, { inDirectory: true }]] as const) {
      const filled = await watchInvalidation(b.herald.runtime.bus, b.herald.runtime.instanceId, key);
      await cacheB.set(key, value, 3600);
      await filled.arrived;
      expect(await cacheB.get(key)).toEqual(value);
    }
    expect((cacheB as NearCache).size).toBeGreaterThanOrEqual(3);

    const erased = await Promise.all(keys.map((key) => watchInvalidation(b.herald.runtime.bus, a.herald.runtime.instanceId, key)));
    expect((await api(a)("DELETE", `/api/users/${userId}`, admin)).status).toBe(204);
    await Promise.all(erased.map((e) => e.arrived));
    for (const key of keys) expect(await cacheB.get(key)).toBeUndefined();
    expect((await api(b)<NotificationPreferences>("GET", `/api/users/${userId}/preferences`, { token: b.adminToken })).body.soundVolume).toBe(70);
  });
});
