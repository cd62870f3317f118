/**
 * A single process on the in-process bus has no other instance to tell: its
 * deliveries build no bus message (a broadcast's names every recipient). A
 * second instance on the same bus is heard from the moment it subscribes.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bus, MemoryBus } from "../../src/bus/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { LOUD, Probe, broadcastBase } from "./helpers.js";

/** The real in-process bus, counting what is published on each channel. */
class CountingBus extends MemoryBus {
  readonly published = new Map<string, number>();
  override async publish(channel: string, message: string): Promise<void> {
    this.published.set(channel, (this.published.get(channel) ?? 0) + 1);
    await super.publish(channel, message);
  }
}

/** Connects `userId` to `h`, creates a notification for them there and waits until their socket has it. */
async function connectAndNotify(h: TestHerald, userId: string): Promise<Probe> {
  const probe = await Probe.open(h.wsUrl, await h.tokenFor(userId));
  await probe.next("sync");
  const n = (await h.herald.notifications.createAndSendNotification({ userId, type: "new_message", title: "t", message: "m" })) as NotificationDto;
  await probe.next("notification", (m) => m.notification.id === n.id);
  return probe;
}

describe("fan-out on the in-process bus", () => {
  const bus = new CountingBus();
  let a: TestHerald;
  let b: TestHerald | undefined;

  beforeAll(async () => {
    a = await startTestHerald({ bus });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await bus.close();
  });

  it("alone, delivers a notification and a broadcast to its sockets without publishing them; with a second instance, publishes and B delivers", async () => {
    const onA = await connectAndNotify(a, "u-alone");
    const id = randomUUID();
    await a.herald.realtime.publishBroadcast(broadcastBase(), [{ userId: "u-alone", id, seq: 9_001, presentation: LOUD }]);
    await onA.next("notification", (m) => m.notification.id === id);
    expect(bus.published.get("realtime") ?? 0).toBe(0);

    b = await startTestHerald({ bus, sharedDatabase: a.database });
    const onB = await Probe.open(b.wsUrl, await b.tokenFor("u-there"));
    await onB.next("sync");
    const m = (await a.herald.notifications.createAndSendNotification({ userId: "u-there", type: "new_message", title: "to B", message: "m" })) as NotificationDto;
    expect((await onB.next("notification", (x) => x.notification.id === m.id)).notification.title).toBe("to B");
    const id2 = randomUUID();
    await a.herald.realtime.publishBroadcast(broadcastBase(), [{ userId: "u-there", id: id2, seq: 9_002, presentation: LOUD }]);
    await onB.next("notification", (x) => x.notification.id === id2);
    expect(bus.published.get("realtime")).toBeGreaterThanOrEqual(2);
    await Promise.all([onA.close(), onB.close()]);
  });
});

describe("fan-out on an embedder's bus that cannot tell who listens (no reachesOthers)", () => {
  const inner = new MemoryBus();
  let published = 0;
  // Written against the Bus interface before reachesOthers existed.
  const bus: Bus = {
    kind: "memory",
    publish: (channel, message) => {
      if (channel === "realtime") published += 1;
      return inner.publish(channel, message);
    },
    subscribe: (channel, handler) => inner.subscribe(channel, handler),
    onReconnect: () => undefined,
    close: () => inner.close(),
  };
  let a: TestHerald;
  beforeAll(async () => {
    a = await startTestHerald({ bus });
  });
  afterAll(async () => {
    await a?.stop();
    await bus.close();
  });

  it("publishes every delivery, as before", async () => {
    const onA = await connectAndNotify(a, "u-custom");
    expect(published).toBe(1);
    await onA.close();
  });
});
