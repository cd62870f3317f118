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
    if (current === undefined) return 0;
    if (!(current instanceof Set)) {
      current.push(frame);
      return 1;
    }
    for (const conn of current) conn.push(frame);
    return current.size;
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
