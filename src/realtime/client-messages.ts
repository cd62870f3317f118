/**
 * Parsing of what clients send. Pure: returns the message or a protocol
 * error code, never throws, so a bad frame can only ever earn an `error` reply.
 */
import type { ClientMessage } from "../protocol/index.js";

export type ParseResult = { ok: true; message: ClientMessage } | { ok: false; code: "malformed_json" | "invalid_message" | "unknown_type"; message: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Most ids in one `ack` (a full sync page). */
export const MAX_ACK_IDS = 1000;

/** A client's stable device id (SDK: a random UUID kept in storage): short, URL-safe. */
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isDeviceId(value: unknown): value is string {
  return typeof value === "string" && DEVICE_ID.test(value);
}

export function isNotificationId(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

export function parseClientMessage(raw: string): ParseResult {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, code: "malformed_json", message: "Message is not valid JSON" };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, code: "invalid_message", message: "Message must be a JSON object with a type" };
  }
  const m = data as Record<string, unknown>;
  switch (m.type) {
    case "ping":
      return { ok: true, message: { type: "ping" } };
    case "ack":
    case "read":
      // An ack carries one id or (batched) `ids`; a read carries one id.
      if (m.type === "ack" && Array.isArray(m.ids) && m.id === undefined) {
        if (m.ids.length === 0 || m.ids.length > MAX_ACK_IDS || !m.ids.every(isNotificationId)) {
          return { ok: false, code: "invalid_message", message: `"ack" ids must be 1 to ${MAX_ACK_IDS} notification ids` };
        }
        return { ok: true, message: { type: "ack", ids: m.ids.map((id) => id.toLowerCase()) } };
      }
      if (!isNotificationId(m.id)) return { ok: false, code: "invalid_message", message: `"${m.type}" needs a notification id` };
      return { ok: true, message: { type: m.type, id: m.id.toLowerCase() } as ClientMessage };
    case "sync": {
      if (m.cursor === undefined || m.cursor === null) return { ok: true, message: { type: "sync" } };
      if (typeof m.cursor !== "number" || !Number.isSafeInteger(m.cursor) || m.cursor < 0) {
        return { ok: false, code: "invalid_message", message: '"sync" cursor must be a non-negative integer' };
      }
      return { ok: true, message: { type: "sync", cursor: m.cursor } };
    }
    default:
      return {
        ok: false,
        code: typeof m.type === "string" ? "unknown_type" : "invalid_message",
        message: typeof m.type === "string" ? `Unknown message type "${m.type.slice(0, 40)}"` : "Message must have a string type",
      };
  }
}

/**
 * Token bucket: `ratePerSec` tokens a second up to `burst`. Time is passed in
 * so the decision is a pure function of the calls.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** True when the bucket has refilled completely (it can be forgotten). */
  isFull(now: number): boolean {
    return this.tokens + (Math.max(0, now - this.last) / 1000) * this.ratePerSec >= this.burst;
  }

  /** Whole seconds until the next token (at least 1): the Retry-After of a refusal. */
  secondsUntilToken(now: number): number {
    const tokens = this.tokens + (Math.max(0, now - this.last) / 1000) * this.ratePerSec;
    return Math.max(1, Math.ceil((1 - tokens) / this.ratePerSec));
  }

  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerSec);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
