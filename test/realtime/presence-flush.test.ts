/**
 * Redis presence writes a connect storm's changes together (src/bus/presence.ts):
 * at most once per `flushMs`, in one MULTI that also carries the message the
 * other instances read, and never counts a connection twice when a heartbeat
 * rewrites the hash while changes are still waiting.
 */
import { describe, expect, it } from "vitest";
import { usingRedis } from "../support/database.js";
import { eventually, twoPresences as twoInstances } from "./helpers.js";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe.skipIf(!usingRedis)("Redis presence flushes", () => {
  it("a storm spread over many event-loop turns goes to Redis in one MULTI carrying the message, and the other instance sees every user", async () => {
    const t = await twoInstances(60_000);
    try {
      // The first change after a quiet spell goes at once (on the next timer tick).
      t.a.add("first");
      await eventually(() => t.b.users(), (u) => u.includes("first"));
      const multi = t.busA.client.multi.bind(t.busA.client);
      let transactions = 0;
      t.busA.client.multi = ((...args: Parameters<typeof multi>) => {
        transactions += 1;
        return multi(...args);
      }) as typeof multi;
      let published = 0;
      const publish = t.busA.publish.bind(t.busA);
      t.busA.publish = (channel, message) => {
        published += 1;
        return publish(channel, message);
      };
      // 40 connects over 20 turns, inside one flush period (60 s here, so only a heartbeat could write them).
      for (let turn = 0; turn < 20; turn++) {
        t.a.add(`u${turn}`);
        t.a.add(`v${turn}`);
        await nextTurn();
      }
      expect(transactions).toBe(0);
      // A heartbeat writes what waits first (then rewrites the hash): one MULTI for all 40, and none through the bus.
      await (t.a as unknown as { heartbeat(): Promise<void> }).heartbeat();
      expect(transactions).toBe(2); // the waiting changes, then the heartbeat's own rewrite
      expect(published).toBe(0);
      await eventually(() => t.b.connectionCount(), (n) => n === 41);
      expect(t.b.users()).toEqual(expect.arrayContaining(["u0", "v19", "first"]));
      expect(t.errors).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it("a heartbeat while changes wait counts each connection once in Redis and on the other instance", async () => {
    const t = await twoInstances(60_000);
    try {
      t.a.add("seed");
      await eventually(() => t.b.users(), (u) => u.includes("seed"));
      // Within the flush period: "x" waits; the heartbeat's rewrite must not be followed by +1 again.
      t.a.add("x");
      t.a.add("x");
      await (t.a as unknown as { heartbeat(): Promise<void> }).heartbeat();
      const hash = await t.busA.client.hgetall(`${t.prefix}presence:i:a`);
      expect(hash).toEqual({ seed: "1", x: "2" });
      await eventually(() => t.b.connectionCount(), (n) => n === 3);
      await (t.b as unknown as { heartbeat(): Promise<void> }).heartbeat();
      expect(t.b.connectionCount()).toBe(3);
    } finally {
      await t.stop();
    }
  });
});
