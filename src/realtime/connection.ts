/**
 * One socket's life: its user, liveness, rate limit, write-buffer bound and
 * the sync switch.
 *
 * The sync switch (no gap, no duplicate): a connection is registered for
 * live messages BEFORE its sync query runs, in state `syncing`; live frames
 * that arrive meanwhile are held. When the sync page is sent, the held frames
 * follow, minus the notifications the page already carried (same id).
 */
import type { WebSocket } from "ws";
import type { Frame } from "./frames.js";
import { TokenBucket } from "./client-messages.js";
import { CloseCodes, type ServerMessage } from "./protocol.js";

/** ws sends a Buffer as a binary frame unless told otherwise; ours are JSON text. */
const TEXT = { binary: false } as const;

export interface ConnectionLimits {
  /** Close (4008) when the socket's unsent bytes would pass this (default 1 MiB). */
  maxBufferedBytes: number;
  /** Frames held during a sync before the connection is treated as a slow consumer. */
  maxHeldFrames: number;
  /** Notification ids remembered per socket to never send one twice (default 2,000). */
  maxRememberedIds: number;
  messagesPerSecond: number;
  messageBurst: number;
  /** Consecutive refused messages tolerated (the first gets an error reply) before closing with 4029. */
  rateLimitStrikes: number;
  /** After a server-initiated close, how long to wait for the peer before dropping the TCP socket. */
  closeGraceMs: number;
}

export interface ConnectionHooks {
  /** A notification frame went out on this socket. */
  onPushed(id: string, userId: string): void;
  onSent(): void;
  onSlowConsumer(): void;
}

export class Connection {
  state: "syncing" | "live" | "closed" = "syncing";
  alive = true;
  /** Code and reason of a server-initiated close, kept for websocket_sessions. */
  closeCode: number | undefined;
  closeReason: string | undefined;
  // Per-connection structures are created on first use: most connections sit idle.
  private held: Frame[] | undefined;
  private syncDepth = 0;
  /** Ids carried by the sync pages sent since the hold began (several syncs may overlap). */
  private synced: Set<string> | undefined;
  private readonly bucket: TokenBucket;
  private strikes = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  /**
   * Notifications already sent on this socket: never sent twice on one
   * connection (a client-requested sync skips them too). Kept after the ack,
   * since acks reach the database in batches and a sync may run before.
   * Bounded (FIFO); the oldest are forgotten (the client dedupes by id anyway).
   */
  private inFlight: Set<string> | undefined;
  /** Serializes this connection's syncs (connect-time and client-requested). */
  syncChain: Promise<void> = Promise.resolve();

  constructor(
    readonly socket: WebSocket,
    readonly userId: string,
    readonly sessionId: string,
    private readonly limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
    now: number,
  ) {
    this.bucket = new TokenBucket(limits.messagesPerSecond, limits.messageBurst, now);
  }

  /** Closes with 4001 when the token expires (setTimeout cannot wait more than ~24.8 days at once). */
  expireAt(expiresAt: number, now: () => number): void {
    const wait = expiresAt - now();
    if (wait <= 0) {
      this.close(CloseCodes.tokenExpired, "token expired");
      return;
    }
    // Whole seconds (JWT exp is in seconds anyway): Node keeps one timer list per
    // distinct duration, so millisecond-distinct waits cost a list per connection.
    this.expiryTimer = setTimeout(() => this.expireAt(expiresAt, now), Math.min(Math.ceil(wait / 1000) * 1000, 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  /** A live frame for this user. */
  push(frame: Frame): void {
    if (this.state === "closed") return;
    if (this.state === "syncing") {
      const held = (this.held ??= []);
      if (held.length >= this.limits.maxHeldFrames) return this.slowConsumer();
      held.push(frame);
      return;
    }
    this.write(frame);
  }

  /** Sends a protocol message now, bypassing the sync hold (replies, the sync page itself). */
  send(message: ServerMessage | Frame): void {
    if (this.state === "closed") return;
    this.write("text" in message ? message : { text: JSON.stringify(message) });
  }

  private write(frame: Frame): void {
    if (frame.id !== undefined && this.inFlight?.has(frame.id)) return;
    const buffered = this.socket.bufferedAmount;
    // A frame always goes out on an empty buffer (a large sync page must not
    // close the socket forever); beyond that the bound cuts slow consumers off.
    const bytes = frame.bytes;
    if (buffered > 0 && buffered + (bytes ? bytes.length : frame.text.length) > this.limits.maxBufferedBytes) return this.slowConsumer();
    if (bytes) this.socket.send(bytes, TEXT);
    else this.socket.send(frame.text);
    this.hooks.onSent();
    if (frame.id !== undefined) {
      this.remember(frame.id);
      this.hooks.onPushed(frame.id, this.userId);
    }
  }

  private remember(id: string): void {
    const set = (this.inFlight ??= new Set());
    set.add(id);
    if (set.size > this.limits.maxRememberedIds) set.delete(set.values().next().value!);
  }

  /** True when the notification already went out on this socket. */
  hasInFlight(id: string): boolean {
    return this.inFlight?.has(id) ?? false;
  }

  beginSync(): void {
    this.syncDepth += 1;
    if (this.state === "live") this.state = "syncing";
  }

  /** Sends the sync page (already serialized) and releases held frames not in it. */
  endSync(page: Frame, ids: Iterable<string>): void {
    if (this.state === "closed") return;
    this.write(page);
    for (const id of ids) {
      (this.synced ??= new Set()).add(id);
      this.remember(id);
    }
    this.syncDepth -= 1;
    if (this.syncDepth > 0) return;
    const held = this.held;
    const synced = this.synced;
    this.held = undefined;
    this.synced = undefined;
    this.state = "live";
    if (!held) return;
    for (const frame of held) {
      if (this.state !== "live") return;
      if (frame.id !== undefined && synced?.has(frame.id)) continue;
      this.write(frame);
    }
  }

  /** Ends a sync that failed: held frames still go out (the client can resync). */
  abortSync(): void {
    this.endSync({ text: JSON.stringify({ type: "error", code: "sync_failed", message: "Sync failed; retry with sync" }) }, []);
  }

  /** True when the message may be processed; false means it was refused (and maybe the socket closed). */
  admit(now: number): boolean {
    if (this.bucket.take(now)) {
      this.strikes = 0;
      return true;
    }
    this.strikes += 1;
    if (this.strikes === 1) this.send({ type: "error", code: "rate_limited", message: "Too many messages; slow down" });
    if (this.strikes > this.limits.rateLimitStrikes) this.close(CloseCodes.rateLimited, "rate limit exceeded");
    return false;
  }

  private slowConsumer(): void {
    if (this.state === "closed") return;
    this.hooks.onSlowConsumer();
    this.close(CloseCodes.slowConsumer, "slow consumer");
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closeCode = code;
    this.closeReason = reason;
    this.held = undefined;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
    }
    // A peer that does not read never sees the close frame: free the socket anyway.
    setTimeout(() => this.socket.terminate(), this.limits.closeGraceMs).unref();
  }

  /** The socket is gone (any reason). */
  disposed(): void {
    this.state = "closed";
    this.held = undefined;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
  }
}
