/**
 * The per-address budget of failed authentications, one for HTTP and WebSocket upgrades together: a
 * credential that fails on either spends it, and past it both refuse the address with 429 until the window
 * ends. The address is derived by one rule (address.ts).
 */
import type { IncomingMessage } from "node:http";
import { type TrustFunction, addressOf } from "./address.js";
import type { WindowCounter } from "./counter.js";

export const WINDOW_MS = 60_000;
/** HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE's default. */
export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 30;

export interface Bucket {
  key: string;
  max: number;
  windowMs: number;
}

export class AuthFailureLimit {
  constructor(
    private readonly counter: WindowCounter,
    readonly perMinute: number,
    private readonly trust: TrustFunction,
  ) {}

  addressOf(req: IncomingMessage): string {
    return addressOf(req, this.trust);
  }

  /** The counter bucket of `address`'s failures (the HTTP limiter hits it for a request whose credential failed). */
  bucket(address: string): Bucket {
    return { key: `auth-failed:${address}`, max: this.perMinute, windowMs: WINDOW_MS };
  }

  /** Seconds until `address` may try again when its budget is spent; undefined while some is left (or the count is unknown). */
  async retryAfter(address: string): Promise<number | undefined> {
    const seen = await this.counter.peek(this.bucket(address).key);
    if (!seen || seen.count < this.perMinute) return undefined;
    return Math.max(1, Math.ceil(seen.resetMs / 1000));
  }

  /** Counts one failed authentication from `address`; the seconds to wait when it went past the budget, else undefined. */
  async failed(address: string): Promise<number | undefined> {
    const hit = await this.counter.hit(this.bucket(address).key, WINDOW_MS);
    if (!hit || hit.count <= this.perMinute) return undefined;
    return Math.max(1, Math.ceil(hit.resetMs / 1000));
  }
}
