/**
 * Attack on the fan-out's "does anyone else listen" shortcut (93c76a3): Fanout.othersListen()
 * infers whether its own handler is in the bus's set from its `unsubscribe` flag. When the
 * MemoryBus is closed under it (its owner Herald stopped) the flag stays set but the handler is
 * gone, so a later instance's lone subscription is taken for our own echo and B publishes nothing.
 * Passes on 93c76a3^ (B published; C delivered), fails after.
 */
import { afterAll, describe, expect, it } from "vitest";
import { MemoryBus } from "../../src/bus/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { Probe } from "./helpers.js";

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not received within ${ms} ms: ${what}`)), ms))]);

describe("an embedded Herald's own bus, shared with others (Herald.runtime.bus)", () => {
  let a: TestHerald | undefined;
  let b: TestHerald | undefined;
  let c: TestHerald | undefined;
  afterAll(async () => {
    await c?.stop();
    await b?.stop();
    await a?.stop().catch(() => undefined);
  });

  it("after the owner stops (closing its MemoryBus), a notification created on B still reaches C, which joined later", async () => {
    a = await startTestHerald(); // owns its MemoryBus (no REDIS_URL)
    const bus = a.herald.runtime.bus;
    expect(bus).toBeInstanceOf(MemoryBus);
    b = await startTestHerald({ bus });
    await a.stop(); // closes the bus it made: B's subscription is dropped with the rest
    a = undefined;
    c = await startTestHerald({ bus, sharedDatabase: b.database });
    const onC = await Probe.open(c.wsUrl, await c.tokenFor("u-late"));
    await onC.next("sync");
    const n = (await b.herald.notifications.createAndSendNotification({ userId: "u-late", type: "new_message", title: "from B", message: "m" })) as NotificationDto;
    // Before 93c76a3 B published and C (subscribed on the fresh channel set) delivered it.
    await within(onC.next("notification", (m) => m.notification.id === n.id), 3_000, "B -> C");
    await onC.close();
  });
});
