/**
 * One socket's life: its user, liveness, rate limit, write-buffer bound and
 * the sync switch.
 *
 * The sync switch (no gap, no duplicate): a connection is registered for
 * live messages BEFORE its sync query runs, in state `syncing`; live frames
 * that arrive meanwhile are held. When the sync page is sent, the held frames
 * follow, minus the notifications the page already carried (same id).
 *
 * Memory: an idle connection is this object and a few words; the sync hold,
 * rate-limit bucket and sent-id set exist only while in use, the limits and
 * hooks are shared by every connection, and token expiry lives on the
 * server's expiry wheel (no timer per socket).
 */
import type { WebSocket } from "ws";
import { type Frame, frameHeaderLength, writeFrameHeader } from "./frames.js";
import { TokenBucket } from "./client-messages.js";
import { CloseCodes, type ServerMessage } from "../protocol/index.js";

/** ws sends a Buffer as a binary frame unless told otherwise; ours are JSON text. */
const TEXT = { binary: false } as const;

/**
 * What `writeFramed` reads of a ws 8 WebSocket (not its public API; pinned
 * by test/realtime/connection-wire.test.ts): the TCP socket and the sender,
 * whose `_state` is 0 (DEFAULT) when it holds nothing back (no compression
 * or Blob read in progress) and so writes every frame synchronously.
 */
interface WsInternals {
  _socket?: { write(chunk: Buffer): boolean } | null;
  _sender?: { _state?: number; _queue?: unknown[] } | null;
}

/**
 * Writes an already framed message (`Frame.wire`) straight to the
 * WebSocket's TCP socket, where `ws.send` would write the same bytes after
 * framing them itself (a header allocation, an options object and a corked
 * two-buffer write per send). Only while the socket is open and ws's sender
 * is idle, so the frame cannot overtake one ws still holds, nor follow a
 * close frame; returns false otherwise (the caller sends through ws).
 */
export function writeFramed(ws: WebSocket, wire: Buffer): boolean {
  if (ws.readyState !== 1) return false;
  const { _socket: socket, _sender: sender } = ws as unknown as WsInternals;
  if (!socket || !sender || sender._state !== 0 || sender._queue?.length !== 0) return false;
  socket.write(wire);
  return true;
}

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

/** What every connection of one server shares: kept once, referenced by one field. */
export interface ConnectionShared {
  readonly limits: ConnectionLimits;
  readonly hooks: ConnectionHooks;
}

/** Exists only while a sync is running: idle connections carry none of it. */
interface SyncState {
  /** Syncs running (a client-requested one may overlap the connect-time one). */
  depth: number;
  /** Live frames that arrived meanwhile. */
  held: Frame[] | undefined;
  /** Ids carried by the sync pages sent since the hold began. */
  synced: Set<string> | undefined;
}

/** Message rate limit state, created on the first client message (idle sockets never send one). */
interface RateState {
  bucket: TokenBucket;
  strikes: number;
}

export class Connection {
  state: "syncing" | "live" | "closed" = "syncing";
  alive = true;
  /** Code and reason of a server-initiated close, kept for websocket_sessions. */
  closedWith: { code: number; reason: string } | undefined = undefined;
  /** Token expiry in whole seconds on the server's expiry wheel (undefined: not registered). */
  expirySecond: number | undefined = undefined;
  /** The client's stable device id (`?device=`), for its per-device sync cursor; undefined for old clients. */
  deviceId: string | undefined = undefined;
  // Per-connection structures are created on first use and dropped after: most connections sit idle.
  private syncing: SyncState | undefined = undefined;
  private rate: RateState | undefined = undefined;
  /**
   * Notifications already sent on this socket: never sent twice on one
   * connection (a client-requested sync skips them too). Kept after the ack,
   * since acks reach the database in batches and a sync may run before.
   * Bounded (FIFO); the oldest are forgotten (the client dedupes by id anyway).
   */
  private inFlight: Set<string> | undefined = undefined;
  /** Serializes this connection's syncs (connect-time and client-requested); undefined when none is queued. */
  syncChain: Promise<void> | undefined = undefined;
  /** A client sync that arrived while one ran: runs after it (later requests replace it). */
  queuedSync: (() => void) | undefined = undefined;

  constructor(
    readonly socket: WebSocket,
    readonly userId: string,
    /** Index of this connection's websocket_sessions row (the server turns it into the row's uuid). */
    readonly session: number,
    private readonly shared: ConnectionShared,
  ) {}

  /** A live frame for this user. */
  push(frame: Frame): void {
    if (this.state === "closed") return;
    if (this.state === "syncing") {
      const sync = this.syncState();
      if (!sync.held) sync.held = [];
      if (sync.held.length >= this.shared.limits.maxHeldFrames) {
        this.slowConsumer();
        return;
      }
      sync.held.push(frame);
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
    const socket = this.socket;
    const buffered = socket.bufferedAmount;
    // A frame always goes out on an empty buffer (a large sync page must not
    // close the socket forever); beyond that the bound cuts slow consumers off.
    const wire = frame.wire;
    if (buffered > 0 && buffered + (wire ? wire.length : frame.bytes ? frame.bytes.length : frame.text.length) > this.shared.limits.maxBufferedBytes) {
      this.slowConsumer();
      return;
    }
    if (wire === undefined || !writeFramed(socket, wire)) {
      const bytes = frame.bytes;
      if (bytes) socket.send(bytes, TEXT);
      else socket.send(frame.text);
    }
    const hooks = this.shared.hooks;
    hooks.onSent();
    if (frame.id !== undefined) {
      this.remember(frame.id);
      hooks.onPushed(frame.id, this.userId);
    }
  }

  /**
   * Two messages that carry no notification id (a reply, then a sync page) as
   * ONE write to the TCP socket: both WebSocket frames in one Buffer, so a
   * connect costs one send system call, not two (on a loaded machine each
   * costs about what a whole small connect does in JavaScript). Through ws,
   * two sends, when its sender holds something back (`writeFramed`). The
   * buffer bound treats the pair as one frame: it goes out on an empty buffer.
   */
  private writeTogether(first: string, second: string): void {
    const socket = this.socket;
    const a = Buffer.byteLength(first);
    const b = Buffer.byteLength(second);
    const buffered = socket.bufferedAmount;
    if (buffered > 0 && buffered + a + b > this.shared.limits.maxBufferedBytes) {
      this.slowConsumer();
      return;
    }
    const ha = frameHeaderLength(a);
    const hb = frameHeaderLength(b);
    const wire = Buffer.allocUnsafe(ha + a + hb + b);
    writeFrameHeader(wire, a, ha);
    wire.write(first, ha, a, "utf8");
    writeFrameHeader(wire.subarray(ha + a), b, hb);
    wire.write(second, ha + a + hb, b, "utf8");
    if (!writeFramed(socket, wire)) {
      socket.send(first);
      socket.send(second);
    }
    const hooks = this.shared.hooks;
    hooks.onSent();
    hooks.onSent();
  }

  private remember(id: string): void {
    if (!this.inFlight) this.inFlight = new Set();
    const set = this.inFlight;
    set.add(id);
    if (set.size > this.shared.limits.maxRememberedIds) set.delete(set.values().next().value!);
  }

  /** True when the notification already went out on this socket. */
  hasInFlight(id: string): boolean {
    return this.inFlight?.has(id) ?? false;
  }

  beginSync(): void {
    if (this.state === "closed") return;
    this.syncState().depth += 1;
    this.state = "syncing";
  }

  /** The sync state, created by the first sync or held frame. */
  private syncState(): SyncState {
    if (!this.syncing) this.syncing = { depth: 0, held: undefined, synced: undefined };
    return this.syncing;
  }

  /**
   * Sends the sync page (already serialized) and releases held frames not in it.
   * `lead` (the connect-time unread_count) goes just before the page, in the same write.
   */
  endSync(page: Frame, ids: Iterable<string>, lead?: Frame): void {
    const sync = this.syncing;
    if (this.state === "closed" || sync === undefined) return;
    if (lead) this.writeTogether(lead.text, page.text);
    else this.write(page);
    // Cut off as a slow consumer by that write: stays closed (the lines below would make it live again).
    // (The cast: TypeScript keeps the narrowing above across the write, which can change the state.)
    if ((this.state as Connection["state"]) === "closed") return;
    for (const id of ids) {
      if (!sync.synced) sync.synced = new Set();
      sync.synced.add(id);
      this.remember(id);
    }
    sync.depth -= 1;
    if (sync.depth > 0) return;
    this.syncing = undefined;
    this.state = "live";
    const { held, synced } = sync;
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
    const { limits } = this.shared;
    if (!this.rate) this.rate = { bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst, now), strikes: 0 };
    const rate = this.rate;
    if (rate.bucket.take(now)) {
      rate.strikes = 0;
      return true;
    }
    rate.strikes += 1;
    if (rate.strikes === 1) this.send({ type: "error", code: "rate_limited", message: "Too many messages; slow down" });
    if (rate.strikes > limits.rateLimitStrikes) this.close(CloseCodes.rateLimited, "rate limit exceeded");
    return false;
  }

  private slowConsumer(): void {
    if (this.state === "closed") return;
    this.shared.hooks.onSlowConsumer();
    this.close(CloseCodes.slowConsumer, "slow consumer");
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closedWith = { code, reason };
    this.syncing = undefined;
    const socket = this.socket;
    try {
      socket.close(code, reason);
    } catch {
      socket.terminate();
    }
    // A peer that does not read never sees the close frame: free the socket anyway.
    setTimeout(() => socket.terminate(), this.shared.limits.closeGraceMs).unref();
  }

  /** The socket is gone (any reason). */
  disposed(): void {
    this.state = "closed";
    this.syncing = undefined;
  }
}
