/**
 * RedisBus on a real Redis (skipped without REDIS_URL): subscribe() resolves
 * only once a message published afterwards reaches the handler, and the
 * subscription stays: for a subscribe made while the subscriber connection
 * is in its handshake, and for every subscriber of a channel, also one that
 * came while the channel's SUBSCRIBE was under way.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisBus } from "../../src/bus/index.js";

const url = process.env.REDIS_URL;

describe.skipIf(!url)("RedisBus", () => {
  const raw = url ? new Redis(url) : undefined;
  const buses: RedisBus[] = [];
  beforeAll(async () => {
    await raw!.ping();
  });
  afterEach(async () => {
    for (const bus of buses.splice(0)) await bus.close();
  });
  afterAll(() => raw?.disconnect());

  function bus(errors: Error[] = []): { bus: RedisBus; prefix: string; subscribers: () => Promise<unknown> } {
    const prefix = `herald-bus-${randomUUID()}:`;
    const made = new RedisBus(url!, prefix, (err) => errors.push(err));
    buses.push(made);
    return { bus: made, prefix, subscribers: () => raw!.call("PUBSUB", "NUMSUB", `${prefix}c`) };
  }

  /** Resolves when `bus` delivered one message on channel "c" to `count` handlers. */
  function listeners(count: number): { handler: (who: string) => (message: string) => void; heard: string[]; delivered: Promise<void> } {
    const heard: string[] = [];
    let done!: () => void;
    const delivered = new Promise<void>((resolve) => (done = resolve));
    return {
      heard,
      delivered,
      handler: (who) => (message) => {
        heard.push(`${who} ${message}`);
        if (heard.length === count) done();
      },
    };
  }

  it("a subscribe made while the subscriber connection is in its handshake stays subscribed after the ready check", async () => {
    const errors: Error[] = [];
    const { bus: b, prefix, subscribers } = bus(errors);
    // The subscriber connection, private: its handshake has begun (CLIENT SETNAME sent), its ready check (INFO) not yet.
    const sub = (b as unknown as { sub: Redis }).sub;
    await once(sub, "connect");
    const { handler, heard, delivered } = listeners(1);
    await b.subscribe("c", handler("only"));
    // Before the fix, SUBSCRIBE went out at once, INFO was refused in subscriber mode, and the connection
    // came back from its reconnect subscribed to nothing.
    if (sub.status !== "ready") await once(sub, "ready");
    expect(await subscribers()).toEqual([`${prefix}c`, 1]);
    await raw!.publish(`${prefix}c`, "x");
    await delivered;
    expect(heard).toEqual(["only x"]);
    expect(errors).toEqual([]);
  });

  it("a second subscriber of a channel whose SUBSCRIBE is under way resolves only once the subscription is active", async () => {
    const { bus: b, prefix, subscribers } = bus();
    const { handler, heard, delivered } = listeners(2);
    // Both before the subscriber connection is up: the first sends SUBSCRIBE, the second joins it.
    const first = b.subscribe("c", handler("first"));
    await b.subscribe("c", handler("second"));
    // Before the fix the second resolved at once, while SUBSCRIBE still waited for the connection.
    expect(await subscribers()).toEqual([`${prefix}c`, 1]);
    await first;
    await raw!.publish(`${prefix}c`, "x");
    await delivered;
    expect(heard.sort()).toEqual(["first x", "second x"]);
  });
});
