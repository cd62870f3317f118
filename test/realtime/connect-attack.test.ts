/**
 * Attacks on the connect path of da2b922 (src/bus/presence.ts flush timer,
 * src/realtime/connection.ts writeTogether), kept as guards.
 */
import { describe, expect, it } from "vitest";
import { usingRedis } from "../support/database.js";
import { eventually, twoPresences } from "./helpers.js";

describe.skipIf(!usingRedis)("Redis presence: stop with changes still waiting", () => {
  it("a disconnect still waiting on the flush timer at stop leaves no ghost connection on the other instance", async () => {
    // A long flush period: the disconnect below is still waiting when A stops.
    const t = await twoPresences(60_000);
    const { a, b, errors } = t;
    try {
      a.add("u"); // the first change after a quiet spell goes on the next tick
      a.add("w");
      await eventually(() => b.connectionCount(), (n) => n === 2);
      a.remove("u"); // waits on the 60 s timer
      a.add("n"); // likewise: never told to B
      await a.stop();
      // A is gone: B must count none of its connections (stop's message is the last word on A).
      await eventually(() => b.users(), (users) => users.length === 0, 5_000);
      expect(b.connectionCount()).toBe(0);
      expect(b.isOnline("u")).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it("a connect and disconnect inside one flush period leave nothing in Redis nor on the other instance", async () => {
    const t = await twoPresences(60_000);
    const { prefix, busA, a, b, errors } = t;
    try {
      a.add("seed");
      await eventually(() => b.users(), (u) => u.includes("seed"));
      // Within the 60 s period: "x" comes and goes, "y" stays, "seed" leaves and comes back.
      a.add("x");
      a.remove("x");
      a.add("y");
      a.remove("seed");
      a.add("seed");
      await (a as unknown as { heartbeat(): Promise<void> }).heartbeat();
      expect(await busA.client.hgetall(`${prefix}presence:i:a`)).toEqual({ seed: "1", y: "1" });
      await eventually(() => b.connectionCount(), (n) => n === 2);
      expect(b.users().sort()).toEqual(["seed", "y"]);
      await (b as unknown as { heartbeat(): Promise<void> }).heartbeat();
      expect(b.users().sort()).toEqual(["seed", "y"]);
      expect(b.connectionCount()).toBe(2);
      expect(errors).toEqual([]);
    } finally {
      await t.stop();
    }
  });
});
