import type { Bus, BusHandler } from "./bus.js";

/** Single-process bus: handlers run on a microtask, like a network hop would be asynchronous. */
export class MemoryBus implements Bus {
  readonly kind = "memory" as const;
  private readonly handlers = new Map<string, Set<BusHandler>>();

  async publish(channel: string, message: string): Promise<void> {
    const set = this.handlers.get(channel);
    if (!set) return;
    for (const handler of [...set]) queueMicrotask(() => handler(message));
  }

  reachesOthers(channel: string, own: BusHandler): boolean {
    const set = this.handlers.get(channel);
    return set !== undefined && set.size > (set.has(own) ? 1 : 0);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0) this.handlers.delete(channel);
    };
  }

  /** An in-process bus never loses messages, so it never reconnects. */
  onReconnect(_handler: () => void): void {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
