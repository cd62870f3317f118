/**
 * Who is connected, cluster-wide. Each instance owns the count of its own
 * connections per user; readers add up every live instance.
 *
 * - In process (MemoryBus): the instances sharing one MemoryBus share one
 *   table, so reads are exact.
 * - Redis: each instance keeps a hash `presence:i:<instanceId>` (user -> count)
 *   with a TTL that its heartbeat refreshes, so a crashed instance's users
 *   disappear within the TTL (and `onInstanceLost` runs for it, on the
 *   survivors' next heartbeat); a `presence` bus message keeps the other
 *   instances' in-memory view fresh between heartbeats. Changes go out
 *   together, at most once per `flushMs` (default 20 ms; the first change
 *   after a quiet spell on the next timer tick): one MULTI carrying the
 *   counts and the message, a single write to Redis. A connect storm of
 *   5,000 sockets sent one MULTI and one PUBLISH per event-loop turn, about
 *   6% of the server's main thread in a backlog drain's profile (#17); the
 *   others' view of a storm now lags it by at most `flushMs`.
 *
 * Reads are synchronous (the guide's `getConnectedProviders()` is), served
 * from that view.
 */
import type { Bus, SharedRedis } from "./bus.js";

export interface Presence {
  /** A local connection of `userId` opened. */
  add(userId: string): void;
  /** A local connection of `userId` closed. */
  remove(userId: string): void;
  /** Connections on every live instance. */
  connectionCount(): number;
  /** Users with at least one connection on any live instance. */
  users(): string[];
  isOnline(userId: string): boolean;
  start(): Promise<void>;
  /** Forgets this instance's connections (cluster-wide) and stops the heartbeat. */
  stop(): Promise<void>;
}

export interface PresenceOptions {
  /** Heartbeat period for the Redis presence keys (default 10 s); the TTL is three periods. */
  heartbeatMs?: number;
  /** Redis only: changes are written (and told to the others) at most once per this period (default PRESENCE_FLUSH_MS). */
  flushMs?: number;
  onError?: (err: unknown) => void;
  /**
   * Redis only: an instance's heartbeat stopped for a whole TTL (it crashed).
   * Every survivor may call it for the same instance, so it must be
   * idempotent; the instance is forgotten once it resolves (retried on the
   * next heartbeat when it rejects).
   */
  onInstanceLost?: (instanceId: string) => Promise<void>;
}

export function createPresence(bus: Bus, instanceId: string, options: PresenceOptions = {}): Presence {
  if (bus.redis) return new RedisPresence(bus, bus.redis, instanceId, options);
  return new MemoryPresence(sharedTable(bus), instanceId);
}

type Counts = Map<string, number>;

function bump(counts: Counts, userId: string, delta: number): void {
  const next = (counts.get(userId) ?? 0) + delta;
  if (next > 0) counts.set(userId, next);
  else counts.delete(userId);
}

/** Sums instance tables into (connections, users). */
function aggregate(tables: Iterable<Counts>): { connections: number; users: Set<string> } {
  let connections = 0;
  const users = new Set<string>();
  for (const t of tables) {
    for (const [user, n] of t) {
      if (n <= 0) continue;
      connections += n;
      users.add(user);
    }
  }
  return { connections, users };
}

const tablesByBus = new WeakMap<Bus, Map<string, Counts>>();

function sharedTable(bus: Bus): Map<string, Counts> {
  let t = tablesByBus.get(bus);
  if (!t) {
    t = new Map();
    tablesByBus.set(bus, t);
  }
  return t;
}

/** Instances sharing one in-process bus share one table. */
class MemoryPresence implements Presence {
  private readonly own: Counts = new Map();

  constructor(
    private readonly table: Map<string, Counts>,
    private readonly instanceId: string,
  ) {}

  add(userId: string): void {
    bump(this.own, userId, 1);
  }
  remove(userId: string): void {
    bump(this.own, userId, -1);
  }
  connectionCount(): number {
    return aggregate(this.table.values()).connections;
  }
  users(): string[] {
    return [...aggregate(this.table.values()).users];
  }
  isOnline(userId: string): boolean {
    for (const t of this.table.values()) if ((t.get(userId) ?? 0) > 0) return true;
    return false;
  }
  async start(): Promise<void> {
    this.table.set(this.instanceId, this.own);
  }
  async stop(): Promise<void> {
    this.own.clear();
    this.table.delete(this.instanceId);
  }
}

const PRESENCE_CHANNEL = "presence";
/** Redis only: presence changes are written (and told to the others) at most once per this period. */
export const PRESENCE_FLUSH_MS = 20;

class RedisPresence implements Presence {
  private readonly own: Counts = new Map();
  /** Other instances' tables, from the last heartbeat read plus deltas since. */
  private readonly remote = new Map<string, Counts>();
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private readonly instancesKey: string;
  private readonly ownKey: string;
  private readonly onError: (err: unknown) => void;
  private readonly onInstanceLost: ((instanceId: string) => Promise<void>) | undefined;
  /** Changes not yet written to Redis (user -> net delta). */
  private pending = new Map<string, number>();
  /** The flush of `pending`, once scheduled. */
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly flushMs: number;
  /** When the last flush ran (performance.now(); never yet: the first change is written at once). */
  private lastFlush = Number.NEGATIVE_INFINITY;
  /** The presence channel as Redis names it: the bus's prefix, then the channel (RedisBus.publish and subscribe). */
  private readonly channel: string;

  constructor(
    private readonly bus: Bus,
    private readonly redis: SharedRedis,
    private readonly instanceId: string,
    options: PresenceOptions,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 10_000;
    this.ttlMs = this.heartbeatMs * 3;
    this.instancesKey = `${redis.prefix}presence:instances`;
    this.ownKey = this.keyOf(instanceId);
    this.flushMs = options.flushMs ?? PRESENCE_FLUSH_MS;
    this.channel = `${redis.prefix}${PRESENCE_CHANNEL}`;
    this.onError = options.onError ?? (() => undefined);
    this.onInstanceLost = options.onInstanceLost;
  }

  private keyOf(instanceId: string): string {
    return `${this.redis.prefix}presence:i:${instanceId}`;
  }

  add(userId: string): void {
    this.change(userId, 1);
  }
  remove(userId: string): void {
    this.change(userId, -1);
  }

  private change(userId: string, delta: number): void {
    bump(this.own, userId, delta);
    this.pending.set(userId, (this.pending.get(userId) ?? 0) + delta);
    if (this.flushTimer !== undefined) return;
    // Monotonic: a wall clock stepped back would hold the flush (and the others' view) for the step.
    const wait = this.lastFlush + this.flushMs - performance.now();
    this.flushTimer = setTimeout(() => this.flushChanges(), Math.max(wait, 0));
  }

  private flushChanges(): void {
    this.flushTimer = undefined;
    this.lastFlush = performance.now();
    const changes = [...this.pending].filter(([, d]) => d !== 0);
    this.pending = new Map();
    if (changes.length === 0) return;
    // One transaction: Redis applies the HINCRBYs before others see the deltas, and the
    // message rides in the same write (the bus's own PUBLISH would be a second one).
    const tx = this.redis.client.multi();
    for (const [user, d] of changes) tx.hincrby(this.ownKey, user, d);
    tx.pexpire(this.ownKey, this.ttlMs).publish(this.channel, JSON.stringify({ i: this.instanceId, c: changes })).exec().catch(this.onError);
  }

  connectionCount(): number {
    return aggregate([this.own, ...this.remote.values()]).connections;
  }
  users(): string[] {
    return [...aggregate([this.own, ...this.remote.values()]).users];
  }
  isOnline(userId: string): boolean {
    if (this.own.has(userId)) return true;
    for (const t of this.remote.values()) if ((t.get(userId) ?? 0) > 0) return true;
    return false;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe(PRESENCE_CHANNEL, (raw) => this.onDelta(raw));
    await this.heartbeat();
    this.timer = setInterval(() => this.heartbeat().catch(this.onError), this.heartbeatMs);
    this.timer.unref();
  }

  /** `{i, c: [[user, delta], ...]}`, or `{i, u, d}` (one change, as older instances send it). */
  private onDelta(raw: string): void {
    try {
      const { i, u, d, c } = JSON.parse(raw) as { i: string; u?: unknown; d?: unknown; c?: unknown };
      if (i === this.instanceId) return;
      const changes = Array.isArray(c) ? (c as unknown[]) : [[u, d]];
      let t = this.remote.get(i);
      for (const change of changes) {
        if (!Array.isArray(change)) continue;
        const [user, delta] = change as unknown[];
        if (typeof user !== "string" || typeof delta !== "number") continue;
        if (!t) {
          t = new Map();
          this.remote.set(i, t);
        }
        bump(t, user, delta);
      }
    } catch (err) {
      this.onError(err);
    }
  }

  /** Rewrites this instance's hash from memory (healing missed writes) and re-reads the others. */
  async heartbeat(): Promise<void> {
    // Changes still waiting go first (same connection, so in order): the rewrite below already
    // counts them, and a delta applied after it would count them twice.
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushChanges();
    }
    const redis = this.redis.client;
    const now = Date.now();
    const tx = redis.multi().del(this.ownKey);
    if (this.own.size > 0) tx.hset(this.ownKey, Object.fromEntries(this.own));
    const cutoff = now - this.ttlMs;
    await tx.pexpire(this.ownKey, this.ttlMs).zadd(this.instancesKey, now, this.instanceId).exec();
    await this.forgetLost(await redis.zrangebyscore(this.instancesKey, "-inf", cutoff));
    const ids = (await redis.zrangebyscore(this.instancesKey, `(${cutoff}`, "+inf")).filter((id) => id !== this.instanceId);
    const read = redis.pipeline();
    for (const id of ids) read.hgetall(this.keyOf(id));
    const results = ids.length > 0 ? ((await read.exec()) ?? []) : [];
    const fresh = new Map<string, Counts>();
    ids.forEach((id, k) => {
      const [err, hash] = results[k] ?? [];
      if (err || !hash) return;
      const counts: Counts = new Map();
      for (const [user, n] of Object.entries(hash as Record<string, string>)) if (Number(n) > 0) counts.set(user, Number(n));
      if (counts.size > 0) fresh.set(id, counts);
    });
    this.remote.clear();
    for (const [id, counts] of fresh) this.remote.set(id, counts);
  }

  /** Instances whose heartbeat is older than the TTL: reported (their sessions closed), then dropped from the set. */
  private async forgetLost(lost: string[]): Promise<void> {
    for (const id of lost) {
      if (id === this.instanceId) continue;
      try {
        await this.onInstanceLost?.(id);
      } catch (err) {
        this.onError(err);
        continue;
      }
      await this.redis.client.zrem(this.instancesKey, id);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.unsubscribe?.().catch(this.onError);
    // Changes still waiting go first: the others count only what they were told, and `gone` below
    // takes back all of `own`. Dropped, a disconnect left waiting (no longer in `own`, never told)
    // stayed counted on the others until their next heartbeat, a ghost for up to `heartbeatMs`.
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushChanges();
    }
    // Tell the others at once rather than letting the TTL expire (same connection as the flush, so after it).
    const gone = [...this.own].map(([user, n]) => [user, -n]);
    if (gone.length > 0) await this.bus.publish(PRESENCE_CHANNEL, JSON.stringify({ i: this.instanceId, c: gone })).catch(this.onError);
    this.own.clear();
    await this.redis.client
      .multi()
      .del(this.ownKey)
      .zrem(this.instancesKey, this.instanceId)
      .exec()
      .catch(this.onError);
  }
}
