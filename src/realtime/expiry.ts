/**
 * Token expiry for every connection of a server on one wheel of whole
 * seconds (JWT `exp` is in seconds): items by the second they expire,
 * advanced by the server's one-second tick. An item costs a map slot, not a
 * Node timer with its closure (the largest part of an idle socket's memory
 * before).
 */
import { SlimMultiMap } from "./multimap.js";

export class ExpiryWheel<T> {
  private readonly bySecond = new SlimMultiMap<number, T>();
  /** Seconds up to this one have been expired. */
  private done = Math.floor(Date.now() / 1000);

  constructor(private readonly onExpire: (item: T) => void) {}

  get size(): number {
    return this.bySecond.size;
  }

  /** Registers `item` to expire at `second`; returns the second it is filed under (for remove). */
  add(second: number, item: T): number {
    const at = Math.max(second, this.done + 1);
    this.bySecond.add(at, item);
    return at;
  }

  remove(second: number, item: T): void {
    this.bySecond.remove(second, item);
  }

  /** Expires everything due at or before `second` (every second since the last call, if the loop stalled). */
  advance(second: number): void {
    if (this.bySecond.size > 0) for (let s = this.done + 1; s <= second; s++) for (const item of this.bySecond.take(s)) this.onExpire(item);
    this.done = Math.max(this.done, second);
  }
}
