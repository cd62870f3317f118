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
  /** Per channel: its handlers, and the SUBSCRIBE every subscriber of it awaits. */
  private readonly channels = new Map<string, { handlers: Set<BusHandler>; subscribed: Promise<unknown> }>();
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
      const entry = this.channels.get(channel);
      if (entry) for (const handler of [...entry.handlers]) handler(message);
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.pub.publish(this.prefix + channel, message);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    const full = this.prefix + channel;
    let entry = this.channels.get(full);
    if (!entry) {
      entry = { handlers: new Set(), subscribed: this.handshakeDone().then(() => this.sub.subscribe(full)) };
      this.channels.set(full, entry);
    }
    const current = entry;
    current.handlers.add(handler);
    const unsubscribe = async () => {
      current.handlers.delete(handler);
      if (current.handlers.size === 0 && this.channels.get(full) === current) {
        this.channels.delete(full);
        await this.handshakeDone();
        await this.sub.unsubscribe(full).catch(() => undefined);
      }
    };
    // Every subscriber waits for the channel's SUBSCRIBE, not only the one that sent it: one that came
    // while it was under way would otherwise resolve before a message published then could reach it.
    // A failed SUBSCRIBE fails each of them and leaves no entry, so the next subscriber sends it again.
    try {
      await current.subscribed;
    } catch (err) {
      await unsubscribe();
      throw err;
    }
    return unsubscribe;
  }

  /**
   * Resolves once the subscriber connection is not in its handshake. ioredis
   * writes SUBSCRIBE at once in that state (the command may run while Redis
   * loads its data), which puts the connection in subscriber mode before its
   * ready check: the check's INFO is then refused, ioredis drops the
   * connection and reconnects, and as it was never ready, subscribes to
   * nothing again, though SUBSCRIBE had answered. Before the handshake
   * (connecting, reconnecting) commands wait in the offline queue until
   * ready, which is safe.
   */
  private async handshakeDone(): Promise<void> {
    if (this.sub.status !== "connect") return;
    // The status changed synchronously; its event comes on the next tick, so neither can be missed here.
    await new Promise<void>((resolve) => {
      const done = () => {
        this.sub.off("ready", done);
        this.sub.off("close", done);
        resolve();
      };
      this.sub.on("ready", done);
      this.sub.on("close", done);
    });
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
    this.channels.clear();
    this.reconnectHandlers.clear();
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }
}
