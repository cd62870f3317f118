/**
 * herald/client: the WebSocket client SDK, for browsers and Node.
 *
 * It connects with the token in the Sec-WebSocket-Protocol header (or
 * `?token=`), reconnects with capped exponential backoff and jitter,
 * resumes from its cursor, acknowledges every notification it receives, and
 * emits each notification once (deduplicated by id, live or replayed).
 *
 * Per device (delivery rule 4): the client names its device with a stable random id
 * (`?device=`), kept in `storage` (localStorage in browsers, memory
 * otherwise), and reconnects with its cursor (the last seq received). The
 * server keeps each device's acknowledged cursor, so a page reload or a new
 * process with the same storage resumes from what this device acknowledged,
 * whatever other devices acked. The cursor itself is held in memory only:
 * seqs are global across users, and a cursor left in a shared browser's
 * storage by one user would hide another user's older notifications.
 *
 * @example
 * import { HeraldClient } from "herald/client";
 * const client = new HeraldClient({ url: "ws://localhost:3001/ws", getToken: () => fetchToken() });
 * client.on("notification", (n) => console.log(n.title));
 * client.on("unread_count", (count) => setBadge(count));
 * client.connect();
 */
import { type ClientMessage, CloseCodes, type NotificationDto, type Presentation, type ServerMessage } from "../protocol/index.js";
import { Emitter } from "./emitter.js";
import { type BackoffOptions, backoffDelay } from "./backoff.js";

export type { NotificationDto } from "../protocol/index.js";
export type { Presentation, ServerMessage, ClientMessage } from "../protocol/index.js";
export { CloseCodes } from "../protocol/index.js";
export { backoffDelay } from "./backoff.js";

/** The subset of the WHATWG WebSocket that the client uses (browsers' global, or the `ws` package in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** Where the device id is kept: the Web Storage shape, so `localStorage` fits. */
export interface DeviceStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface NotificationUpdate {
  id: string;
  read: boolean;
  archived: boolean;
  deleted: boolean;
}

export interface HeraldClientEvents {
  /** Each notification once, live (with its presentation) or replayed by a sync (`replayed: true`). */
  notification: [notification: NotificationDto, presentation: Presentation | undefined, meta: { replayed: boolean }];
  /** The notifications of one sync page not seen before (possibly empty), oldest first. */
  sync: [notifications: NotificationDto[], info: { cursor: number; truncated: boolean }];
  updated: [update: NotificationUpdate];
  unread_count: [count: number];
  state: [state: ConnectionState];
  /** The server could not replay everything in one page: reload lists through REST. */
  reset: [];
  error: [error: { code: string; message: string }];
  /** The server closed the connection (code and reason), before any reconnect. */
  disconnect: [info: { code: number; reason: string }];
}

export interface HeraldClientOptions extends BackoffOptions {
  /** ws:// or wss:// URL of the server (path `/` or `/ws`). */
  url: string;
  token?: string;
  /** Called before each connection attempt (fresh token after expiry); wins over `token`. */
  getToken?: () => string | Promise<string>;
  /** Defaults to globalThis.WebSocket; in Node < 22 pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** "protocol" (default) keeps the token out of URLs and logs; "query" sends `?token=`. */
  tokenTransport?: "protocol" | "query";
  /** Application-level ping period (default 25 s); no answer within `pongTimeoutMs` (10 s) forces a reconnect. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** How long live acks are coalesced before being sent (default 50 ms). */
  ackDelayMs?: number;
  /** How many notification ids to remember for de-duplication (default 10,000). */
  dedupeWindow?: number;
  /** This device's id (1-64 of A-Z a-z 0-9 _ -); default: one generated once and kept in `storage`. */
  deviceId?: string;
  /** Keeps the generated device id; default globalThis.localStorage when usable, else memory (a new device per process). */
  storage?: DeviceStorage;
}

const DEVICE_KEY = "herald.deviceId";

function defaultStorage(): DeviceStorage | undefined {
  try {
    // Reading localStorage throws in some sandboxed frames; Node has none.
    return (globalThis as { localStorage?: DeviceStorage }).localStorage;
  } catch {
    return undefined;
  }
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** The stored device id, or a new one stored for next time (storage failures only cost the persistence). */
function loadDeviceId(storage: DeviceStorage | undefined): string {
  try {
    const stored = storage?.getItem(DEVICE_KEY);
    if (stored && /^[A-Za-z0-9_-]{1,64}$/.test(stored)) return stored;
  } catch {
    // unreadable storage: a fresh id
  }
  const id = randomId();
  try {
    storage?.setItem(DEVICE_KEY, id);
  } catch {
    // full or read-only storage
  }
  return id;
}

const OPEN = 1;
/** Server limit on ids per ack message. */
const MAX_ACK_BATCH = 500;
const PROTOCOL = "herald.v1";
/**
 * Close codes after which reconnecting cannot help. 4009 (the user's oldest
 * connection closed for a newer one) is among them: reconnecting would close
 * the next oldest, and a user with more tabs than the limit would loop.
 */
const FATAL_CODES = new Set<number>([CloseCodes.protocolError, CloseCodes.unsupportedData, CloseCodes.invalidPayload, CloseCodes.tooManyConnections, CloseCodes.userErased]);

export class HeraldClient extends Emitter<HeraldClientEvents> {
  private socket: WebSocketLike | undefined;
  private _state: ConnectionState = "idle";
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongDeadline: ReturnType<typeof setTimeout> | undefined;
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private pendingAcks: string[] = [];
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private resumeCursor = 0;
  private maxSeq = 0;
  private token: string | undefined;
  /** Sent on every connection so the server keeps this device's own cursor. */
  readonly deviceId: string;

  constructor(private readonly options: HeraldClientOptions) {
    super();
    this.token = options.token;
    this.deviceId = options.deviceId ?? loadDeviceId(options.storage ?? defaultStorage());
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Where this device resumes: the highest seq received (or synced past) so far; 0 before any. */
  get cursor(): number {
    return Math.max(this.maxSeq, this.resumeCursor);
  }

  /** Replaces the static token used for the next connection attempt. */
  setToken(token: string): void {
    this.token = token;
  }

  connect(): void {
    if (this._state === "connecting" || this._state === "open") return;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    void this.open();
  }

  /** Marks a notification read (every other connection of the user gets notification_updated). */
  read(id: string): boolean {
    return this.send({ type: "read", id });
  }

  /** Asks for the notifications after `cursor` (default: this device's cursor; 0: what this device has not acknowledged). */
  sync(cursor = this.cursor): boolean {
    return this.send({ type: "sync", cursor });
  }

  /** Closes for good: no reconnect. */
  close(): void {
    this.flushAcks();
    this.clearTimers();
    const socket = this.socket;
    this.socket = undefined;
    this.setState("closed");
    if (socket) {
      this.detach(socket);
      try {
        socket.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
  }

  private async open(): Promise<void> {
    const Ctor = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new Error("No WebSocket implementation: pass options.WebSocket (e.g. from the ws package)");
    let token: string | undefined;
    try {
      token = this.options.getToken ? await this.options.getToken() : this.token;
    } catch {
      return this.scheduleReconnect();
    }
    if (this._state === "closed") return;
    const url = new URL(this.options.url);
    url.searchParams.set("device", this.deviceId);
    if (this.cursor > 0) url.searchParams.set("cursor", String(this.cursor));
    let protocols: string[] | undefined;
    if (token && this.options.tokenTransport === "query") url.searchParams.set("token", token);
    else if (token) protocols = [PROTOCOL, token];
    let socket: WebSocketLike;
    try {
      socket = new Ctor(url.toString(), protocols);
    } catch {
      return this.scheduleReconnect();
    }
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      this.startPing();
    };
    socket.onmessage = (ev) => this.onMessage(ev.data);
    socket.onerror = () => undefined; // a close event follows
    socket.onclose = (ev) => this.lost(socket, ev.code, ev.reason);
  }

  /** The socket is gone (closed by the server, the network, or given up on here). */
  private lost(socket: WebSocketLike, code: number, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.detach(socket);
    this.clearTimers();
    this.emit("disconnect", { code, reason });
    if (FATAL_CODES.has(code)) this.setState("closed");
    else this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this._state === "closed") return;
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempt, this.options);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this._state !== "closed") void this.open();
    }, delay);
  }

  private onMessage(data: unknown): void {
    this.armPongDeadline(false);
    let message: ServerMessage;
    try {
      message = JSON.parse(typeof data === "string" ? data : String(data)) as ServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case "notification": {
        const n = message.notification;
        this.queueAck(n.id);
        if (this.remember(n)) this.emit("notification", n, message.presentation, { replayed: false });
        return;
      }
      case "sync": {
        const fresh = message.notifications.filter((n) => this.remember(n));
        for (let i = 0; i < message.notifications.length; i += MAX_ACK_BATCH) {
          this.send({ type: "ack", ids: message.notifications.slice(i, i + MAX_ACK_BATCH).map((n) => n.id) });
        }
        this.resumeCursor = Math.max(this.resumeCursor, message.cursor);
        this.emit("sync", fresh, { cursor: message.cursor, truncated: message.truncated === true });
        for (const n of fresh) this.emit("notification", n, undefined, { replayed: true });
        if (message.truncated) {
          this.emit("reset");
          this.send({ type: "sync", cursor: message.cursor });
        }
        return;
      }
      case "notification_updated":
        this.emit("updated", { id: message.id, read: message.read, archived: message.archived, deleted: message.deleted });
        return;
      case "unread_count":
        this.emit("unread_count", message.count);
        return;
      case "error":
        this.emit("error", { code: message.code, message: message.message });
        return;
      case "pong":
        return;
    }
  }

  /** True the first time an id is seen (within the dedupe window). */
  private remember(n: NotificationDto): boolean {
    if (n.seq > this.maxSeq) this.maxSeq = n.seq;
    if (this.seen.has(n.id)) return false;
    this.seen.add(n.id);
    this.seenOrder.push(n.id);
    const window = this.options.dedupeWindow ?? 10_000;
    while (this.seenOrder.length > window) this.seen.delete(this.seenOrder.shift()!);
    return true;
  }

  /**
   * Live acks are coalesced for `ackDelayMs` so a burst costs a few messages,
   * not one per notification (the server rate-limits client messages).
   */
  private queueAck(id: string): void {
    this.pendingAcks.push(id);
    if (this.pendingAcks.length >= MAX_ACK_BATCH) this.flushAcks();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAcks(), this.options.ackDelayMs ?? 50);
  }

  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const ids = this.pendingAcks;
    this.pendingAcks = [];
    if (ids.length === 1) this.send({ type: "ack", id: ids[0]! });
    else if (ids.length > 1) this.send({ type: "ack", ids });
  }

  private send(message: ClientMessage): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  private startPing(): void {
    const every = this.options.pingIntervalMs ?? 25_000;
    this.pingTimer = setInterval(() => {
      if (this.send({ type: "ping" })) this.armPongDeadline(true);
    }, every);
    (this.pingTimer as { unref?: () => void }).unref?.();
  }

  /** Any message proves the link alive; a ping without answer in time forces a reconnect. */
  private armPongDeadline(arm: boolean): void {
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.pongDeadline = undefined;
    if (!arm) return;
    const socket = this.socket;
    this.pongDeadline = setTimeout(() => {
      if (!socket || this.socket !== socket) return;
      // A dead link may never finish a closing handshake: give up on it now.
      this.lost(socket, 4000, "pong timeout");
      try {
        socket.close(4000, "pong timeout");
      } catch {
        // ignore
      }
    }, this.options.pongTimeoutMs ?? 10_000);
    (this.pongDeadline as { unref?: () => void }).unref?.();
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.reconnectTimer = this.pingTimer = this.pongDeadline = undefined;
  }

  private detach(socket: WebSocketLike): void {
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.onerror = () => undefined;
  }

  private setState(state: ConnectionState): void {
    if (this._state === state) return;
    this._state = state;
    this.emit("state", state);
  }
}
