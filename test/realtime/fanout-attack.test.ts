/**
 * Pins 625d74a (found by helper-82 attacking 93c76a3): the fan-out asks the bus whether anyone but its own
 * handler listens. Its first version guessed its own subscription from a flag; a MemoryBus closed under it
 * (the Herald that made it stopped) dropped that handler, a later instance's lone subscription was taken
 * for its own, and nothing was published to it. Failed on 93c76a3..94f060d; passes before and after.
 */
import { afterAll, describe, it } from "vitest";
import { MemoryBus } from "../../src/bus/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { within } from "../support/within.js";
import { Probe } from "./helpers.js";

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
    // As when A made the bus (no REDIS_URL) and B was given A's runtime.bus: A's stop closes it under B.
    const bus = new MemoryBus();
    a = await startTestHerald({ bus });
    b = await startTestHerald({ bus });
    await a.stop();
    a = undefined;
    await bus.close(); // B's subscription is dropped with the rest
    c = await startTestHerald({ bus, sharedDatabase: b.database });
    const onC = await Probe.open(c.wsUrl, await c.tokenFor("u-late"));
    await onC.next("sync");
    const n = (await b.herald.notifications.createAndSendNotification({ userId: "u-late", type: "new_message", title: "from B", message: "m" })) as NotificationDto;
    // Before 93c76a3 B published and C (subscribed on the fresh channel set) delivered it.
    await within(onC.next("notification", (m) => m.notification.id === n.id), 3_000, "B -> C");
    await onC.close();
  });
});
