/**
 * The fan-out bus: publish a message on a channel, every subscriber on every
 * instance receives it. In-process by default; Redis pub/sub when REDIS_URL is
 * set. The database is the truth; the bus only carries "this happened".
 */
export type BusHandler = (message: string) => void;

export interface Bus {
  readonly kind: "memory" | "redis";
  publish(channel: string, message: string): Promise<void>;
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
