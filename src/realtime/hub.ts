/** The connections on this instance, by user. Delivery here is local only; the bus carries the rest. */
import type { Connection } from "./connection.js";
import type { Frame } from "./frames.js";
import { SlimMultiMap } from "./multimap.js";

export class Hub {
  /** Most users hold one connection: stored bare, not in a Set (less memory per idle user). */
  private readonly byUser = new SlimMultiMap<string, Connection>();

  add(conn: Connection): void {
    this.byUser.add(conn.userId, conn);
  }

  /** Returns false when the connection was not (or no longer) registered. */
  remove(conn: Connection): boolean {
    return this.byUser.remove(conn.userId, conn);
  }

  has(userId: string): boolean {
    return this.byUser.has(userId);
  }

  /** Pushes one frame to every connection of the user here; returns how many got it. */
  deliver(userId: string, frame: Frame): number {
    const current = this.byUser.get(userId);
    return current === undefined ? 0 : pushTo(current, frame);
  }

  /**
   * The user's connections here as stored (one, or a Set of several), or
   * undefined: a fan-out looks each recipient up once and builds their frame
   * only when they are connected here, then hands both to `pushTo`.
   */
  lookup(userId: string): Connection | Set<Connection> | undefined {
    return this.byUser.get(userId);
  }

  /** The user's connections here, oldest first. */
  of(userId: string): Connection[] {
    const current = this.byUser.get(userId);
    return current === undefined ? [] : current instanceof Set ? [...current] : [current];
  }

  connections(): IterableIterator<Connection> {
    return this.byUser.values().values();
  }

  get size(): number {
    return this.byUser.size;
  }

  get userCount(): number {
    return this.byUser.keyCount;
  }
}

/** Pushes one frame to what `Hub.lookup` returned; returns how many connections got it. */
export function pushTo(target: Connection | Set<Connection>, frame: Frame): number {
  if (!(target instanceof Set)) {
    target.push(frame);
    return 1;
  }
  for (const conn of target) conn.push(frame);
  return target.size;
}
