/**
 * Issue #15.1 and the nested-metadata 500: what PostgreSQL cannot store is
 * refused when an event is tracked, and a row that still fails at the database
 * is set aside by the ingest with one log line instead of blocking every
 * later write.
 */
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalyticsIngest, AnalyticsService } from "../../src/analytics/index.js";
import { MemoryCache } from "../../src/cache/index.js";
import { ManualClock, silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { uuid } from "./fixtures.js";

/** A pino logger whose lines land in an array. */
function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** A sparse array of `length` slots with only `values` filled: the others are holes, not undefined. */
function sparse(length: number, values: Record<number, unknown>): unknown[] {
  return Object.assign(new Array(length), values);
}

describe("analytics hardening", () => {
  let db: TestDatabase;
  const count = async (sql: string, params: unknown[] = []) => Number((await db.query<{ n: number }>(sql, params))[0]!.n);
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => db.cleanup());

  it("trackEvent refuses NUL, unpaired surrogates, deep nesting and oversize metadata with HERALD_VALIDATION, and records nothing", async () => {
    const clock = new ManualClock("2024-01-10T12:00:00Z");
    const ingest = new AnalyticsIngest({ database: db, clock, logger: silentLogger, intervalMs: 60_000 });
    const service = new AnalyticsService({ database: db, cache: new MemoryCache(), clock, logger: silentLogger, analytics: ingest });
    const bad: [string, Record<string, unknown> | null][] = [
      ["u", { a: "\u0000" }],
      ["u", { "k\u0000": 1 }],
      ["u", { a: "\uD800" }],
      ["u", { a: "x\uDC00y" }],
      ["u", { a: ["ok", { b: "\u0000" }] }],
      ["u", nested(20)],
      ["u", nested(100_000)],
      ["u", { a: "x".repeat(9000) }],
      ["u\u0000", { device: "mobile" }],
      ["\uD83D", null],
    ];
    for (const [i, [userId, metadata]] of bad.entries()) {
      await expect(service.trackEvent(uuid(1), userId, "opened", metadata), `case ${i}`).rejects.toMatchObject({
        code: "HERALD_VALIDATION",
        status: 400,
      });
    }
    expect(ingest.pending).toBe(0);
    // A paired surrogate (an emoji) and ordinary nesting are fine.
    await service.trackEvent(uuid(1), "u", "opened", { device: "📱", nested: nested(5) });
    expect(ingest.pending).toBe(1);
    // A library caller's sparse array (holes are JSON null) is metadata like any other, not a TypeError.
    await service.trackEvent(uuid(1), "u", "opened", { tags: sparse(3, { 1: "x" }) });
    await expect(service.trackEvent(uuid(1), "u", "opened", { tags: sparse(2, { 1: "\u0000" }) })).rejects.toMatchObject({ code: "HERALD_VALIDATION" });
    expect(ingest.pending).toBe(2);
    await ingest.stop();
  });

  it("a row that fails at the database is set aside with one log line; the other users' events arrive and nothing is retried", async () => {
    await db.query("TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats");
    const { logger, lines } = capturingLogger();
    const ingest = new AnalyticsIngest({ database: db, logger, intervalMs: 3_600_000, batchSize: 1_000_000 });
    for (let i = 0; i < 40; i++) ingest.record({ notificationId: uuid(i), userId: `user${i}`, eventType: "delivered" });
    // Below the service's validation: a valid JavaScript Date that PostgreSQL's timestamptz cannot hold.
    ingest.record({ notificationId: uuid(999), userId: "mallory", eventType: "opened", timestamp: new Date(-8.64e15) });
    for (let i = 40; i < 80; i++) ingest.record({ notificationId: uuid(i), userId: `user${i}`, eventType: "delivered" });

    await ingest.flush();
    expect(ingest.pending).toBe(0);
    expect(await count("SELECT count(*)::int AS n FROM analytics_events")).toBe(80);
    expect(await count("SELECT count(*)::int AS n FROM analytics_firsts WHERE event_type = 'delivered'")).toBe(80);
    expect(await count("SELECT count(*)::int AS n FROM analytics_events WHERE user_id = 'mallory'")).toBe(0);
    const warnings = lines.filter((l) => l.level >= 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/set aside/);

    // Later events still flow, and the bad row is not tried again.
    ingest.record({ notificationId: uuid(500), userId: "late", eventType: "clicked" });
    await ingest.stop();
    expect(await count("SELECT count(*)::int AS n FROM analytics_events WHERE user_id = 'late'")).toBe(1);
    expect(lines.filter((l) => l.level >= 40)).toHaveLength(1);
  });

  it("the ingest also drops, at record(), metadata and user ids PostgreSQL cannot store", async () => {
    const ingest = new AnalyticsIngest({ database: db, logger: silentLogger, intervalMs: 3_600_000 });
    ingest.record({ notificationId: uuid(1), userId: "u", eventType: "opened", metadata: { a: "\u0000" } });
    ingest.record({ notificationId: uuid(1), userId: "u\u0000", eventType: "opened" });
    ingest.record({ notificationId: uuid(1), userId: "u", eventType: "opened", metadata: nested(100_000) });
    expect(ingest.pending).toBe(0);
    await ingest.stop();
  });
});
