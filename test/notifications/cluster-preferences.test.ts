/**
 * Preferences are cached for an hour, so an update on one instance must
 * invalidate the copy every other instance serves. With REDIS_URL the cache
 * is shared through Redis; two instances share one database and one prefix.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NotificationPreferences } from "../support/bodies.js";
import { type TestDatabase, openTestDatabase, usingRedis } from "../support/database.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { api } from "./api.js";

describe.skipIf(!usingRedis)("preferences across two instances (Redis)", () => {
  let db: TestDatabase;
  let a: TestHerald;
  let b: TestHerald;
  beforeAll(async () => {
    db = await openTestDatabase();
    const busPrefix = `herald-test-${randomUUID()}:`;
    a = await startTestHerald({ sharedDatabase: db, busPrefix });
    b = await startTestHerald({ sharedDatabase: db, busPrefix });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await db?.cleanup();
  });

  it("an update through instance A is what instance B serves next, though B had cached the old value", async () => {
    const token = await a.tokenFor("cluster-pref");
    expect((await api(b)<NotificationPreferences>("GET", "/api/preferences", { token })).body.soundVolume).toBe(70);
    expect((await api(a)("PATCH", "/api/preferences", { token, body: { soundVolume: 20 } })).status).toBe(200);
    expect((await api(b)<NotificationPreferences>("GET", "/api/preferences", { token })).body.soundVolume).toBe(20);
  });
});
