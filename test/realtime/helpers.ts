/**
 * Realtime test helpers: notification rows written straight to the database,
 * and a raw `ws` probe that records every message and awaits the next match.
 */
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import { WebSocket } from "ws";
import type { Database } from "../../src/db/index.js";
import { RedisBus, createPresence } from "../../src/bus/index.js";
import { type BroadcastBase, NOTIFICATION_COLUMNS, type NotificationDto, type NotificationRow, toNotificationDto } from "../../src/notifications/index.js";
import type { Presentation, ServerMessage } from "../../src/protocol/index.js";
import type { NotificationWebSocketServer } from "../../src/realtime/index.js";

export const LOUD: Presentation = { sound: true, volume: 70, desktop: true, silent: false };

/** A broadcast's shared fields (publishBroadcast adds each recipient's id, seq and user id), created now. */
export function broadcastBase(data: Record<string, unknown> | null = null): BroadcastBase {
  const now = new Date().toISOString();
  return {
    type: "platform_update", priority: "low", title: "hello all", message: "m", description: null, icon: null, actionUrl: null, actionLabel: null,
    read: false, archived: false, deliveryStatus: "pending", sentAt: null, deliveredAt: null, readAt: null, relatedId: null, data, createdAt: now, updatedAt: now,
  };
}

let counter = 0;

export async function insertNotification(database: Database, userId: string, title = `n${++counter}`): Promise<NotificationDto> {
  const [row] = await database.query<NotificationRow>(
    `INSERT INTO notifications (user_id, type, priority, title, message) VALUES ($1, 'new_message', 'high', $2, $3) RETURNING ${NOTIFICATION_COLUMNS}`,
    [userId, title, `${title} body`],
  );
  return toNotificationDto(row!);
}

/** Inserts `count` rows for one user in one statement; returns them oldest first. */
export async function insertMany(database: Database, userId: string, count: number): Promise<NotificationDto[]> {
  const rows = await database.query<NotificationRow>(
    `INSERT INTO notifications (user_id, type, priority, title, message)
     SELECT $1, 'new_message', 'normal', 'bulk ' || (i - 1), 'm' FROM generate_series(1, $2::int) i
     RETURNING ${NOTIFICATION_COLUMNS}`,
    [userId, count],
  );
  return rows.map(toNotificationDto).sort((a, b) => a.seq - b.seq);
}

export class Probe {
  readonly messages: ServerMessage[] = [];
  private waiters: Array<{ match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void; from: number }> = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const m = JSON.parse(String(data)) as ServerMessage;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(m)) return true;
        w.resolve(m);
        return false;
      });
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string, token?: string, options: { protocols?: string[]; cursor?: number } = {}): Promise<Probe> {
    const u = new URL(url);
    if (token && !options.protocols) u.searchParams.set("token", token);
    if (options.cursor) u.searchParams.set("cursor", String(options.cursor));
    const ws = new WebSocket(u.toString(), options.protocols, { perMessageDeflate: false });
    const probe = new Probe(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return probe;
  }

  /** The first message (already received or future) of `type` matching `where`. */
  next<T extends ServerMessage["type"]>(type: T, where: (m: Extract<ServerMessage, { type: T }>) => boolean = () => true): Promise<Extract<ServerMessage, { type: T }>> {
    const match = (m: ServerMessage) => m.type === type && where(m as Extract<ServerMessage, { type: T }>);
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen as Extract<ServerMessage, { type: T }>);
    return new Promise((resolve) => this.waiters.push({ match, resolve: resolve as (m: ServerMessage) => void, from: this.messages.length }));
  }

  of<T extends ServerMessage["type"]>(type: T): Array<Extract<ServerMessage, { type: T }>> {
    return this.messages.filter((m) => m.type === type) as Array<Extract<ServerMessage, { type: T }>>;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /** Resolves once the server has handled every message sent before (they are handled in order; this waits for a fresh pong). */
  async roundTrip(): Promise<void> {
    const pongs = this.of("pong").length;
    this.send({ type: "ping" });
    await this.next("pong", () => this.of("pong").length > pongs);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/** Resolves with the HTTP status of a refused upgrade, or rejects if the socket opened. */
export function upgradeStatus(url: string, protocols?: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once("open", () => {
      ws.close();
      reject(new Error("socket opened"));
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once("error", (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/**
 * Resolves once `server` has handled the close of every connection `userId` had on it (its own
 * socket close event, which may come after the peer's) and the session rows are written.
 */
export async function closedOnServer(server: NotificationWebSocketServer, userId: string): Promise<void> {
  await eventually(() => server.getConnectedProviders(), (users) => !users.includes(userId));
  await server.flushDeliveryLog();
}

/** Polls `read` until `done` accepts its result (for state written asynchronously), or fails at the deadline. */
export async function eventually<T>(read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface UpgradeAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One raw upgrade request to /ws; resolves with the HTTP answer (101 when accepted). */
export function upgrade(baseUrl: string, query: string, headers: Record<string, string> = {}): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}/ws${query}`, {
      headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": randomBytes(16).toString("base64"), ...headers },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" });
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Two instances on one prefix; heartbeats far apart, so only the delta messages can tell B about A's users. */
export async function twoPresences(flushMs: number) {
  const prefix = `herald-presence-${randomUUID()}:`;
  const busA = new RedisBus(process.env.REDIS_URL!, prefix);
  const busB = new RedisBus(process.env.REDIS_URL!, prefix);
  const errors: unknown[] = [];
  const a = createPresence(busA, "a", { heartbeatMs: 60_000, flushMs, onError: (err) => errors.push(err) });
  const b = createPresence(busB, "b", { heartbeatMs: 60_000, onError: (err) => errors.push(err) });
  await a.start();
  await b.start();
  return {
    prefix,
    busA,
    a,
    b,
    errors,
    async stop() {
      await a.stop();
      await b.stop();
      await busA.close();
      await busB.close();
    },
  };
}
