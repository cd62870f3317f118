/** Awaiting a NearCache invalidation as it reaches an instance: the test subscribes before the write that sends it. */
import type { Bus } from "../../src/bus/index.js";
import { type Invalidation, type InvalidationKind, NEAR_CACHE_CHANNEL } from "../../src/cache/index.js";

/**
 * Once subscribed, gives `arrived`: it resolves when `bus` delivered an
 * invalidation from `origin` naming `key` (and of that `kind`, if given). RedisBus runs every handler of a
 * message in one synchronous loop, so by the time an `await arrived`
 * resumes, the instance's NearCache has handled it too.
 */
const ARRIVAL_BOUND_MS = 10_000;

export async function watchInvalidation(bus: Bus, origin: string, key: string, kind?: InvalidationKind): Promise<{ arrived: Promise<void> }> {
  let resolve!: () => void;
  const arrived = new Promise<void>((r) => (resolve = r));
  let heard = 0;
  let fromOrigin = 0;
  const unsubscribe = await bus.subscribe(NEAR_CACHE_CHANNEL, (raw) => {
    heard += 1;
    const message = JSON.parse(raw) as Invalidation;
    if (message.origin !== origin) return;
    fromOrigin += 1;
    if (kind !== undefined && message.kind !== kind) return;
    if (message.keys?.includes(key) || (message.prefix !== undefined && key.startsWith(message.prefix))) resolve();
  });
  // Bounded and labelled: a lost message fails here, naming the key, instead of as a bare test timeout
  // (one CI run timed out at 30 s in this file without saying which wait it was). The counts tell a bus
  // that heard nothing (a lost subscription) from one that heard the sender but not this key.
  let timer: NodeJS.Timeout | undefined;
  const bounded = Promise.race([
    arrived,
    new Promise<never>((_, reject) => {
      const lost = () =>
        reject(new Error(`no invalidation of ${key} from ${origin} within ${ARRIVAL_BOUND_MS} ms (heard meanwhile: ${heard}, ${fromOrigin} from ${origin})`));
      // After a stall of the process longer than the bound, the timer and the message are due in the same
      // loop turn and timers run before I/O: reject only after this turn's I/O, so a message already here wins.
      timer = setTimeout(() => setImmediate(lost), ARRIVAL_BOUND_MS);
    }),
  ]);
  // Wrapped: an async function returning a promise would wait for it.
  return {
    arrived: bounded.finally(() => {
      clearTimeout(timer);
      return unsubscribe();
    }),
  };
}
