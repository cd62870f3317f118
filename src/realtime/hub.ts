/** The connections on this instance, by user. Delivery here is local only; the bus carries the rest. */
import type { Connection } from "./connection.js";
import type { Frame } from "./frames.js";

export class Hub {
  private readonly byUser = new Map<string, Set<Connection>>();
  private count = 0;

  add(conn: Connection): void {
    let set = this.byUser.get(conn.userId);
    if (!set) this.byUser.set(conn.userId, (set = new Set()));
    set.add(conn);
    this.count += 1;
  }

  /** Returns false when the connection was not (or no longer) registered. */
  remove(conn: Connection): boolean {
    const set = this.byUser.get(conn.userId);
    if (!set?.delete(conn)) return false;
    if (set.size === 0) this.byUser.delete(conn.userId);
    this.count -= 1;
    return true;
  }

  has(userId: string): boolean {
    return this.byUser.has(userId);
  }

  /** Pushes one frame to every connection of the user here; returns how many got it. */
  deliver(userId: string, frame: Frame): number {
    const set = this.byUser.get(userId);
    if (!set) return 0;
    for (const conn of set) conn.push(frame);
    return set.size;
  }

  connections(): IterableIterator<Connection> {
    return [...this.byUser.values()].flatMap((s) => [...s]).values();
  }

  get size(): number {
    return this.count;
  }

  get userCount(): number {
    return this.byUser.size;
  }
}
