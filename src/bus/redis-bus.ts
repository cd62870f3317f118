import { Redis } from "ioredis";
import type { Bus, BusHandler, SharedRedis } from "./bus.js";

/**
 * Redis pub/sub bus: one connection publishes, one subscribes. Channels are
 * prefixed so several Herald deployments (or test runs) can share a Redis.
 */
export class RedisBus implements Bus {
  readonly kind = "redis" as const;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, Set<BusHandler>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private subscriberLost = false;

  constructor(
    url: string,
    readonly prefix = "herald:",
    onError: (err: Error) => void = () => undefined,
  ) {
    const options = { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false };
    // Commands issued in the same tick (the publishes and cache reads of a
    // group-committed batch of creations) go out in one write.
    // Named, so CLIENT LIST tells an operator (or a test) which connection is whose.
    this.pub = new Redis(url, { ...options, enableAutoPipelining: true, connectionName: `${prefix}pub` });
    this.sub = new Redis(url, { ...options, connectionName: `${prefix}sub` });
    this.pub.on("error", onError);
    this.sub.on("error", onError);
    // ioredis re-subscribes by itself after a reconnect; tell listeners so
    // they can fetch what was published while the connection was down.
    this.sub.on("close", () => {
      this.subscriberLost = true;
    });
    this.sub.on("ready", () => {
      if (!this.subscriberLost) return;
      this.subscriberLost = false;
      for (const handler of [...this.reconnectHandlers]) handler();
    });
    this.sub.on("message", (channel: string, message: string) => {
      const set = this.handlers.get(channel);
      if (set) for (const handler of [...set]) handler(message);
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.pub.publish(this.prefix + channel, message);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    const full = this.prefix + channel;
    let set = this.handlers.get(full);
    if (!set) {
      set = new Set();
      this.handlers.set(full, set);
      await this.sub.subscribe(full);
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(full) === set) {
        this.handlers.delete(full);
        await this.sub.unsubscribe(full).catch(() => undefined);
      }
    };
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.add(handler);
  }

  /** The publishing connection, reused for presence and cache keys. */
  get client(): Redis {
    return this.pub;
  }

  get redis(): SharedRedis {
    return { client: this.pub, prefix: this.prefix };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.reconnectHandlers.clear();
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }
}
