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
  const unsubscribe = await bus.subscribe(NEAR_CACHE_CHANNEL, (raw) => {
    const message = JSON.parse(raw) as Invalidation;
    if (message.origin !== origin || (kind !== undefined && message.kind !== kind)) return;
    if (message.keys?.includes(key) || (message.prefix !== undefined && key.startsWith(message.prefix))) resolve();
  });
  // Bounded and labelled: a lost message fails here, naming the key, instead of as a bare test timeout
  // (one CI run timed out at 30 s in this file without saying which wait it was).
  let timer: NodeJS.Timeout | undefined;
  const bounded = Promise.race([
    arrived,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no invalidation of ${key} from ${origin} within ${ARRIVAL_BOUND_MS} ms`)), ARRIVAL_BOUND_MS);
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
