/** The connections on this instance, by user. Delivery here is local only; the bus carries the rest. */
import type { Connection } from "./connection.js";
import type { Frame } from "./frames.js";

export class Hub {
  /** Most users hold one connection: it is stored bare, a Set only from the second on (less memory per idle user). */
  private readonly byUser = new Map<string, Connection | Set<Connection>>();
  private count = 0;

  add(conn: Connection): void {
    const current = this.byUser.get(conn.userId);
    if (current === undefined) this.byUser.set(conn.userId, conn);
    else if (current instanceof Set) {
      if (current.has(conn)) return;
      current.add(conn);
    } else if (current === conn) return;
    else this.byUser.set(conn.userId, new Set([current, conn]));
    this.count += 1;
  }

  /** Returns false when the connection was not (or no longer) registered. */
  remove(conn: Connection): boolean {
    const current = this.byUser.get(conn.userId);
    if (current === conn) this.byUser.delete(conn.userId);
    else if (current instanceof Set && current.delete(conn)) {
      if (current.size === 1) this.byUser.set(conn.userId, current.values().next().value!);
    } else return false;
    this.count -= 1;
    return true;
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

  connections(): IterableIterator<Connection> {
    return [...this.byUser.values()].flatMap((v) => (v instanceof Set ? [...v] : [v])).values();
  }

  get size(): number {
    return this.count;
  }

  get userCount(): number {
    return this.byUser.size;
  }
}
