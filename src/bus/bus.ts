/**
 * The fan-out bus: publish a message on a channel, every subscriber on every
 * instance receives it. In-process by default; Redis pub/sub when REDIS_URL is
 * set. The database is the truth; the bus only carries "this happened".
 */
import type { Redis } from "ioredis";

export type BusHandler = (message: string) => void;

/** A Redis connection other components may share (presence, cache, rate-limit counters), with the key prefix to use. */
export interface SharedRedis {
  readonly client: Redis;
  readonly prefix: string;
}

export interface Bus {
  readonly kind: "memory" | "redis";
  /** Set when the bus runs over Redis: what shares its connection uses this, never a type test. */
  readonly redis?: SharedRedis;
  publish(channel: string, message: string): Promise<void>;
  /**
   * Whether a message published on `channel` now would reach a handler other
   * than `own`, for a bus that knows all its subscribers (the in-process bus).
   * Left out, the answer is "yes": Redis, where other instances listen unseen.
   * A bus that carries messages to other processes must leave it out (or
   * answer true), or what it would carry is never published to it.
   */
  reachesOthers?(channel: string, own: BusHandler): boolean;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>>;
  /**
   * Calls `handler` each time the bus comes back after losing its connection
   * (never for the in-process bus): what was published meanwhile is lost, so
   * listeners catch up from the database.
   */
  onReconnect(handler: () => void): void;
  close(): Promise<void>;
}
