/**
 * The per-address budget of failed authentications, one for HTTP and WebSocket upgrades together: a
 * credential that fails on either spends it, and past it both answer that address's failures with 429 until
 * the window ends (a valid credential is never refused for what others at its address did). The address is
 * derived by one rule (address.ts).
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

  /** Counts one failed authentication from `address`; the seconds to wait when it went past the budget, else undefined. */
  async failed(address: string): Promise<number | undefined> {
    const hit = await this.counter.hit(this.bucket(address).key, WINDOW_MS);
    if (hit.count <= this.perMinute) return undefined;
    return Math.max(1, Math.ceil(hit.resetMs / 1000));
  }
}
