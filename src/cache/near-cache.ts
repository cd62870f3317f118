/**
 * A process-local copy in front of the shared (Redis) cache for the entries
 * every creation reads: preferences, time zone and recipient facts. A hit
 * costs no Redis round trip; other keys (analytics) go straight through.
 *
 * Consistency, per near-cached key:
 * - Every write (set, delete, deleteMany, setMany, deletePrefix) drops this
 *   instance's copy before and after the shared write and publishes an
 *   invalidation on the bus: after the write's answer, or, for a one-key write
 *   on the bus's own connection, right behind the write (sharedWritesOrderedWithBus;
 *   again after the answer if that publish failed); every instance, the writer
 *   included, drops its copy when the message arrives. So the writer reads its own write at once,
 *   and the others within the bus's delivery time.
 * - Sets of near keys are fills: a reader missed, read the row, and sets it
 *   (writers commit, then delete). So a set may carry a row older than a
 *   change, and so may a value Redis answered while a change was under way.
 *   One record per key (KeyState) tells both apart, with counters of the
 *   invalidations heard since a read began:
 *   - a read of Redis is kept locally only if the key's `generation` (every
 *     drop of the key counts) did not move while it was in flight;
 *   - a miss is the start of a fill, counted until a set comes; a change of
 *     the key heard after it (a delete here, a delete message from another
 *     instance, a prefix delete, a lost bus) makes every miss counted so far
 *     "overtaken". A set does not say which miss it follows, so while an
 *     overtaken miss may still be followed by its set, no set of the key is
 *     written: each set counts off one miss (a current one first, so the
 *     overtaken ones stay counted as long as they can be), and overtaken
 *     misses are forgotten NEAR_CACHE_TTL_MS after the newest of them (a
 *     reader that failed never sets).
 *   - a change from another instance heard within NEAR_CACHE_TTL_MS after our
 *     own set deletes the key again: our set may have reached Redis after the
 *     change's delete.
 * - A copy lives at most NEAR_CACHE_TTL_MS, which bounds what a lost message
 *   can cost; when the bus reconnects (messages may have been lost) every
 *   copy is dropped and every miss counted so far is overtaken; while Redis
 *   is unreachable nothing local is served.
 */
import { LRUCache } from "lru-cache";
import type { Bus } from "../bus/index.js";
import type { Cache } from "./index.js";

/** Keys with these prefixes get a local copy; the keys are those of src/preferences and src/users. */
export const NEAR_CACHE_PREFIXES: readonly string[] = ["prefs:", "tz:", "recipient:"];
/** The longest a local copy is served: the worst case for an instance that missed an invalidation. */
export const NEAR_CACHE_TTL_MS = 5_000;
/** Local copies kept at most; beyond it the least recently used goes. */
export const NEAR_CACHE_MAX_ENTRIES = 50_000;
/** Bus channel of invalidations: one JSON `Invalidation` per message. */
export const NEAR_CACHE_CHANNEL = "cache:invalidate";

export interface NearCacheOptions {
  /** The cache every instance shares (RedisCache). */
  shared: Cache;
  bus: Pick<Bus, "publish" | "subscribe" | "onReconnect">;
  /** False while the shared cache cannot be reached: reads then go to it (and miss), never to a local copy. */
  sharedAvailable: () => boolean;
  /** Names this instance in its invalidations (for logs and tests); receivers treat every origin alike. */
  origin: string;
  now?: () => number;
  localTtlMs?: number;
  maxEntries?: number;
  prefixes?: readonly string[];
  /** A publish that failed (the local TTL bounds its cost) or a malformed message. */
  onError?: (err: unknown) => void;
  /**
   * True when the shared cache's one-key writes and the bus's publishes go
   * out on one connection in the order they are issued (RedisCache on the
   * RedisBus's own publishing client): a set's or delete's invalidation is
   * then published with its write, not after the write's answer. Redis
   * applies the write first, so no instance that hears the invalidation can
   * read the old value; the other instances drop their copies one round trip
   * sooner (#17: a preference change was two sequential round trips).
   */
  sharedWritesOrderedWithBus?: boolean;
}

/**
 * What a write of near keys tells every instance (the message format may
 * change between versions: the instances of one deployment run the same one).
 */
export interface Invalidation {
  /** The instance that wrote. */
  origin: string;
  /**
   * - "change": a delete after the row changed; another instance's pending fills of these keys may predate it.
   * - "fill": a set of what a reader read; the others drop their copies, and that is all.
   * - "undo": a delete undoing our own, possibly stale, fill; likewise (so one change starts no chain of them).
   * Receivers take an unknown kind for a change.
   */
  kind: InvalidationKind;
  /** The keys written; or */
  keys?: string[];
  /** every key starting with this. */
  prefix?: string;
}

export type InvalidationKind = "change" | "fill" | "undo";

/** One near key's reads and fills under way on this instance (see the consistency notes above). */
interface KeyState {
  /** Drops of the key heard (change, fill, undo, here or elsewhere): a read of Redis that saw it move keeps nothing. */
  generation: number;
  /** Misses (fills begun) since the key's last change whose set has not come. */
  misses: number;
  /** Misses that a change overtook whose set has not come: while any may still come, no set is written. */
  overtakenMisses: number;
  /** When the newest miss was answered. */
  lastMissAt: number;
  /** When the overtaken misses are forgotten: NEAR_CACHE_TTL_MS after the newest of them. */
  overtakenUntil: number;
  /** When this instance last wrote a fill of the key (-Infinity: none to undo). */
  filledAt: number;
  /** The `dropAll` this state has caught up with (that drop is applied to each state when next looked at). */
  dropAllCount: number;
}

export class NearCache implements Cache {
  private readonly shared: Cache;
  private readonly prefixes: readonly string[];
  private readonly now: () => number;
  private readonly ttlMs: number;
  // Boxed: lru-cache takes `undefined` as "delete".
  private readonly local: LRUCache<string, { value: unknown }>;
  /** Keys read, missed or filled within the last NEAR_CACHE_TTL_MS (each look refreshes the age). */
  private readonly states: LRUCache<string, KeyState>;
  /**
   * Until then, a set of a key with no state is not written: a state with
   * misses still pending was pushed out by newer keys, and what happened to
   * its key is unknown.
   */
  private forgottenMissesUntil = Number.NEGATIVE_INFINITY;
  private dropAllCount = 0;
  /** Local copies are served and kept only between start() and stop(): invalidations reach us only then. */
  private listening = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private reconnectHooked = false;

  constructor(private readonly options: NearCacheOptions) {
    this.shared = options.shared;
    this.prefixes = options.prefixes ?? NEAR_CACHE_PREFIXES;
    this.now = options.now ?? Date.now;
    this.ttlMs = options.localTtlMs ?? NEAR_CACHE_TTL_MS;
    const max = options.maxEntries ?? NEAR_CACHE_MAX_ENTRIES;
    // ttlResolution 0: read the clock at every check (an injected clock may jump).
    const clock = { perf: { now: this.now }, ttlResolution: 0 };
    // lru-cache serves an entry while its age is <= ttl: here it expires when its age reaches the TTL.
    this.local = new LRUCache({ max, ttl: Math.max(1, this.ttlMs - 1), ...clock });
    this.states = new LRUCache<string, KeyState>({
      max,
      ttl: this.ttlMs,
      updateAgeOnGet: true,
      ...clock,
      dispose: (state, _key, reason) => {
        if (reason === "evict" && state.misses + state.overtakenMisses > 0) this.forgottenMissesUntil = this.now() + this.ttlMs;
      },
    });
  }

  /** Subscribes to invalidations; until it resolves, every read goes to the shared cache. */
  async start(): Promise<void> {
    if (this.unsubscribe) return;
    const { bus } = this.options;
    this.unsubscribe = await bus.subscribe(NEAR_CACHE_CHANNEL, (raw) => this.receive(raw));
    if (!this.reconnectHooked) {
      this.reconnectHooked = true;
      // What was published while the bus was down is lost: forget everything rather than trust it.
      bus.onReconnect(() => this.dropAll());
    }
    this.listening = true;
  }

  async stop(): Promise<void> {
    this.listening = false;
    this.dropAll();
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.();
  }

  /** Local copies held now (for tests and metrics). */
  get size(): number {
    return this.local.size;
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (!this.listening || !this.isNear(key)) return this.shared.get<T>(key);
    if (!this.options.sharedAvailable()) {
      // Redis is down: miss as RedisCache does, and keep nothing from before the outage.
      this.dropAll();
      return this.shared.get<T>(key);
    }
    const copy = this.local.get(key);
    if (copy) return copy.value as T;
    const before = this.stateOf(key);
    const generation = before.generation;
    const value = await this.shared.get<T>(key);
    if (!this.listening) return value;
    // A state pushed out meanwhile says nothing of what happened to the key: then keep nothing.
    const after = this.stateOf(key);
    if (value === undefined) {
      // The reader reads the row from now on, after every change heard so far.
      after.misses += 1;
      after.lastMissAt = this.now();
    } else if (after === before && after.generation === generation) {
      this.local.set(key, { value });
    }
    return value;
  }

  async set(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    if (!this.isNear(key)) return this.shared.set(key, value, ttlSeconds);
    if (!this.admitFill(key)) {
      // Perhaps read before a change: the next reader fills it.
      this.dropKey(key);
      return;
    }
    await this.writeKeys([key], () => this.shared.set(key, value, ttlSeconds), "fill", this.options.sharedWritesOrderedWithBus);
  }

  async delete(key: string): Promise<void> {
    if (!this.isNear(key)) return this.shared.delete(key);
    await this.writeKeys([key], () => this.shared.delete(key), "change", this.options.sharedWritesOrderedWithBus);
  }

  async setMany(entries: readonly (readonly [string, unknown])[], ttlSeconds: number): Promise<void> {
    const written = entries.filter(([key]) => {
      if (!this.isNear(key) || this.admitFill(key)) return true;
      this.dropKey(key);
      return false;
    });
    const nearKeys = written.map(([key]) => key).filter((key) => this.isNear(key));
    await this.writeKeys(nearKeys, () => this.shared.setMany(written, ttlSeconds), "fill");
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    await this.writeKeys(
      keys.filter((key) => this.isNear(key)),
      () => this.shared.deleteMany(keys),
      "change",
    );
  }

  async deletePrefix(prefix: string): Promise<void> {
    // "prefs:" and "prefs:alice" both reach near-cached keys; "analytics:" does not.
    if (!this.prefixes.some((near) => near.startsWith(prefix) || prefix.startsWith(near))) return this.shared.deletePrefix(prefix);
    this.dropPrefix(prefix, true);
    await this.shared.deletePrefix(prefix);
    this.dropPrefix(prefix, false);
    await this.announce({ origin: this.options.origin, kind: "change", prefix });
  }

  /**
   * Drops the keys' copies around the shared write (a read racing it is not kept) and tells every instance:
   * after the write's answer, or (`ordered`: one command, on the bus's connection) right behind it, and
   * again after the answer if that publish failed.
   */
  private async writeKeys(nearKeys: string[], write: () => Promise<void>, kind: InvalidationKind, ordered?: boolean): Promise<void> {
    // The row changed before its delete began: a miss answered from now on reads the new one.
    for (const key of nearKeys) this.dropKey(key, kind === "change");
    // Redis is down: the shared cache skips fills, so there is nothing to announce, and the announcement
    // would wait in ioredis's offline queue until Redis is back (a creation hung 12 s in the outage test).
    if (kind === "fill" && !this.options.sharedAvailable()) return;
    const message: Invalidation = { origin: this.options.origin, kind, keys: nearKeys };
    const written = write();
    // Sent behind the write, in its pipeline: a connection lost after the write's answer aborts it (ioredis
    // resends nothing of a pipeline in flight), so it is sent again once the write has answered, as unordered.
    const sentWithWrite =
      ordered && nearKeys.length > 0
        ? this.publish(message).then(
            () => true,
            () => false,
          )
        : undefined;
    await written;
    if (nearKeys.length === 0) return;
    for (const key of nearKeys) this.dropKey(key);
    if (!(await (sentWithWrite ?? false))) await this.announce(message);
  }

  /** Publishes an invalidation; a failure is reported (the local TTL bounds its cost). */
  private async announce(message: Invalidation): Promise<void> {
    await this.publish(message).catch((err: unknown) => this.options.onError?.(err));
  }

  private publish(message: Invalidation): Promise<void> {
    return this.options.bus.publish(NEAR_CACHE_CHANNEL, JSON.stringify(message));
  }

  private receive(raw: string): void {
    try {
      const { origin, kind, keys, prefix } = JSON.parse(raw) as Invalidation;
      if (!Array.isArray(keys) && typeof prefix !== "string") throw new Error(`invalidation names no key: ${raw.slice(0, 200)}`);
      // Our own changes were applied when made.
      const changedElsewhere = kind !== "fill" && kind !== "undo" && origin !== this.options.origin;
      const undo: string[] = [];
      for (const key of keys ?? []) {
        if (typeof key !== "string") continue;
        this.dropKey(key, changedElsewhere);
        if (changedElsewhere && this.takeRecentFill(key)) undo.push(key);
      }
      if (typeof prefix === "string") {
        this.dropPrefix(prefix, changedElsewhere);
        if (changedElsewhere) for (const key of [...this.states.keys()]) if (key.startsWith(prefix) && this.takeRecentFill(key)) undo.push(key);
      }
      // Our recent fill may have reached Redis after the change's delete: delete it again (its next reader fills it afresh).
      if (undo.length > 0) {
        this.writeKeys(undo, () => this.shared.deleteMany(undo), "undo").catch((err: unknown) => this.options.onError?.(err));
      }
    } catch (err) {
      // Unreadable: drop everything rather than keep what it may have named.
      this.dropAll();
      this.options.onError?.(err);
    }
  }

  /**
   * Whether a set of `key` (a fill) may be written, counting it off one miss:
   * not while a miss that a change overtook may still be followed by its set
   * (this set may be that one).
   */
  private admitFill(key: string): boolean {
    const now = this.now();
    const existing = this.states.get(key);
    if (!existing && now < this.forgottenMissesUntil) return false;
    const state = existing ? this.caughtUp(existing) : this.stateOf(key);
    if (now >= state.overtakenUntil) state.overtakenMisses = 0;
    const admitted = state.overtakenMisses === 0;
    if (state.misses > 0) state.misses -= 1;
    else if (state.overtakenMisses > 0) state.overtakenMisses -= 1;
    if (admitted) state.filledAt = now;
    return admitted;
  }

  /** Whether this instance filled `key` within NEAR_CACHE_TTL_MS (once: the fill is then undone). */
  private takeRecentFill(key: string): boolean {
    const state = this.peekState(key);
    if (!state || this.now() - state.filledAt >= this.ttlMs) return false;
    state.filledAt = Number.NEGATIVE_INFINITY;
    return true;
  }

  private isNear(key: string): boolean {
    for (const prefix of this.prefixes) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** The key's state, made if it has none. */
  private stateOf(key: string): KeyState {
    const existing = this.peekState(key);
    if (existing) return existing;
    const state: KeyState = {
      generation: 0,
      misses: 0,
      overtakenMisses: 0,
      lastMissAt: Number.NEGATIVE_INFINITY,
      overtakenUntil: Number.NEGATIVE_INFINITY,
      filledAt: Number.NEGATIVE_INFINITY,
      dropAllCount: this.dropAllCount,
    };
    this.states.set(key, state);
    return state;
  }

  private peekState(key: string): KeyState | undefined {
    const state = this.states.get(key);
    return state && this.caughtUp(state);
  }

  /** Applies the dropAll calls this state missed (done lazily: one may come with every read while Redis is down). */
  private caughtUp(state: KeyState): KeyState {
    if (state.dropAllCount !== this.dropAllCount) {
      state.dropAllCount = this.dropAllCount;
      this.changed(state);
    }
    return state;
  }

  /** The key's row changed: reads in flight keep nothing, and the misses counted so far are overtaken. */
  private changed(state: KeyState): void {
    state.generation += 1;
    const now = this.now();
    if (now >= state.overtakenUntil) state.overtakenMisses = 0;
    // Misses older than NEAR_CACHE_TTL_MS are forgotten: a reader that failed never sets.
    if (state.misses > 0 && now - state.lastMissAt < this.ttlMs) {
      state.overtakenMisses += state.misses;
      state.overtakenUntil = state.lastMissAt + this.ttlMs;
    }
    state.misses = 0;
  }

  /** Drops the local copy; reads in flight keep nothing; `changed`: the row changed too. */
  private dropKey(key: string, changed = false): void {
    this.local.delete(key);
    const state = this.peekState(key);
    if (!state) return;
    if (changed) this.changed(state);
    else state.generation += 1;
  }

  private dropPrefix(prefix: string, changed: boolean): void {
    for (const key of [...this.local.keys()]) if (key.startsWith(prefix)) this.local.delete(key);
    for (const key of [...this.states.keys()]) if (key.startsWith(prefix)) this.dropKey(key, changed);
  }

  /** A change may have gone unheard (bus down, Redis down, stopped): no copy is kept and no pending fill written. */
  private dropAll(): void {
    this.local.clear();
    this.dropAllCount += 1;
  }
}
