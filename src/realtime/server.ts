/**
 * The guide's WebSocket server, attachable to any http.Server (Fastify's,
 * Express's, a bare one): it takes the server's `upgrade` events for `/` and
 * `/ws`, checks the JWT before the handshake completes, and owns the local
 * connections. Fan-out to other instances goes through `Fanout` (the bus),
 * database writes through the batched `DeliveryLog`, presence through
 * `src/bus/presence.ts`.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import { type Presence, createPresence } from "../bus/index.js";
import { problem } from "../errors/index.js";
import { AuthFailureLimit, DEFAULT_AUTH_FAILURES_PER_MINUTE, LocalCounter, trustFunction } from "../limits/index.js";
import type { AnalyticsIngest } from "../analytics/index.js";
import type { Authenticator, Principal } from "../auth/index.js";
import type { Bus } from "../bus/index.js";
import type { Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { Registry } from "prom-client";
import { TokenBucket, parseClientMessage } from "./client-messages.js";
import { Connection, type ConnectionLimits, type ConnectionShared } from "./connection.js";
import { DeliveryLog } from "./delivery-log.js";
import { Fanout } from "./fanout.js";
import { WS_PATHS, chooseProtocol, pathOf, readHandshake, refuseUpgrade, refuseUpgradeWithProblem } from "./handshake.js";
import { Hub } from "./hub.js";
import { closeSessionsOfEarlierRuns, closeSessionsOfInstance } from "./lost-sessions.js";
import { type RealtimeMetrics, realtimeMetrics } from "./metrics.js";
import type { BroadcastBase, BroadcastRecipient, InboxActions, RealtimePublisher } from "../notifications/index.js";
import { CloseCodes, type NotificationDto, type Presentation, type ServerMessage } from "../protocol/index.js";
import { ExpiryWheel } from "./expiry.js";
import { SyncReader } from "./sync.js";

export interface RealtimeDeps {
  database: Database;
  bus: Bus;
  auth: Authenticator;
  clock: Clock;
  logger: Logger;
  analytics: AnalyticsIngest;
  metrics: Registry;
  /** Names this process in websocket_sessions and presence. */
  instanceId: string;
}

/** Named limits with safe defaults; every forced disconnect has a code (CloseCodes, src/protocol). */
export interface RealtimeOptions extends ConnectionLimits {
  /** Server ping period; a peer that has not answered the previous ping is dropped. */
  heartbeatMs: number;
  /** Largest client message, fragments included (ws closes with 1009 beyond it). */
  maxPayload: number;
  /** Most notifications in one `sync` message; beyond it `truncated: true`. */
  syncLimit: number;
  /** Period of the batched sent/delivered/session writes. */
  flushIntervalMs: number;
  /** Heartbeat of the Redis presence keys (TTL = 3 periods). */
  presenceHeartbeatMs: number;
  /** WebSocket upgrades per user: sustained rate and burst (beyond: HTTP 429 before the upgrade). */
  connectsPerSecond: number;
  connectBurst: number;
  /** Open connections per user on this instance; a new one beyond it closes the user's oldest (4009). */
  maxConnectionsPerUser: number;
  /** Client-requested syncs per user: sustained rate and burst (beyond: an `error` frame `sync_rate_limited`). */
  syncsPerSecond: number;
  syncBurst: number;
  /**
   * At start, close every open websocket_sessions row of another instance:
   * only when this process is the database's sole server (embedded database
   * or no Redis), so they can only be left over from a crashed run.
   */
  closeEarlierSessions: boolean;
  /** Device cursors kept per user (device_cursors rows); the least recently syncing or acking devices beyond it are forgotten. */
  maxDevicesPerUser: number;
}

export const DEFAULT_REALTIME_OPTIONS: RealtimeOptions = Object.freeze({
  heartbeatMs: 30_000,
  maxPayload: 64 * 1024,
  syncLimit: 500,
  flushIntervalMs: 50,
  presenceHeartbeatMs: 10_000,
  connectsPerSecond: 2,
  connectBurst: 30,
  maxConnectionsPerUser: 20,
  syncsPerSecond: 2,
  syncBurst: 10,
  closeEarlierSessions: false,
  maxDevicesPerUser: 20,
  maxBufferedBytes: 1024 * 1024,
  maxHeldFrames: 10_000,
  maxRememberedIds: 2_000,
  messagesPerSecond: 50,
  messageBurst: 100,
  rateLimitStrikes: 50,
  closeGraceMs: 1_000,
});

/** What the server is given besides its runtime: limits shared with the HTTP layer (src/herald.ts injects them). */
export interface RealtimeLimits {
  /**
   * The per-address failed-authentication budget HTTP uses (one counter, one address rule). Alone (no
   * composition root) the server keeps its own, in this process, by socket address, at the default budget.
   */
  authFailures: AuthFailureLimit;
}

const CONNECTION = Symbol("herald.connection");
type SocketWithConnection = WebSocket & { [CONNECTION]?: Connection };

interface Started {
  deps: RealtimeDeps;
  log: DeliveryLog;
  reader: SyncReader;
  presence: Presence;
  fanout: Fanout;
  metrics: RealtimeMetrics;
  heartbeat: NodeJS.Timeout;
}

export class NotificationWebSocketServer implements RealtimePublisher {
  readonly options: RealtimeOptions;
  private readonly wss: WebSocketServer;
  private readonly hub = new Hub();
  private readonly connectBuckets = new Map<string, TokenBucket>();
  private readonly syncBuckets = new Map<string, TokenBucket>();
  private startup: Promise<Started> | undefined;
  private readonly authFailures: AuthFailureLimit;
  private started: Started | undefined;
  private inbox: InboxActions | undefined;
  private closing: Promise<void> | undefined;
  /** Messages sent since the counter was last updated: prom-client's inc() is too slow for every frame. */
  private unsentMetric = 0;
  private shared: ConnectionShared | undefined;
  private metricsTimer: NodeJS.Timeout | undefined;
  /** Closes connections whose token expired (one timer for all of them, not one per socket). */
  private readonly expiry = new ExpiryWheel<Connection>((conn) => conn.close(CloseCodes.tokenExpired, "token expired"));
  /** Ticks once a second while there is work: token expiry and forgetting refilled connect buckets. */
  private secondTimer: NodeJS.Timeout | undefined;
  /**
   * websocket_sessions ids: this server's random uuid prefix and a per-connection
   * counter in the last 12 hex digits, so a connection keeps a small integer,
   * not a 36-character string.
   */
  private readonly sessionPrefix = randomUUID().slice(0, 24);
  private sessions = 0;

  private syncMetrics(metrics: RealtimeMetrics): void {
    if (this.unsentMetric === 0) return;
    metrics.messagesSent.inc(this.unsentMetric);
    this.unsentMetric = 0;
  }

  constructor(
    readonly httpServer: HttpServer,
    readonly deps: RealtimeDeps,
    options: Partial<RealtimeOptions> = {},
    limits?: RealtimeLimits,
  ) {
    this.authFailures = limits?.authFailures ?? new AuthFailureLimit(new LocalCounter(), DEFAULT_AUTH_FAILURES_PER_MINUTE, trustFunction(false));
    this.options = { ...DEFAULT_REALTIME_OPTIONS, ...options };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: chooseProtocol,
    });
  }

  /**
   * Takes the http.Server's upgrades (at once, so none is missed while the
   * rest starts), then starts the delivery log, presence, fan-out and the
   * heartbeat. Idempotent.
   */
  async start(): Promise<void> {
    if (!this.startup) {
      this.httpServer.on("upgrade", this.onUpgrade);
      this.startup = this.startParts(this.deps);
      this.startup.catch(() => undefined); // surfaced to the caller below and to the public methods
    }
    await this.startup;
  }

  /** Resolves once start() finished; rejects when it failed or was never called. */
  private get ready(): Promise<Started> {
    return this.startup ?? Promise.reject(new Error("NotificationWebSocketServer.start() was not called"));
  }

  private async startParts(deps: RealtimeDeps): Promise<Started> {
    const logger = deps.logger;
    const metrics = realtimeMetrics(deps.metrics);
    // On PostgreSQL the log writes on a connection of its own that commits without waiting for the WAL
    // flush (synchronous_commit = off): its marks (sent, delivered, device cursors, session rows) are
    // no promise to a caller, a crash loses at most the last fraction of a second of them (the rows are
    // sent again: the wire is at-least-once), and each flush's commit no longer queues for an fsync
    // beside the creations' (#17: the delivered UPDATE's commit waited on WALSync like a creation's).
    // Analytics events derived from a mark are committed after it, synchronously, which flushes it too.
    const logDatabase = deps.database.openWriter?.({ connections: 1, settings: { synchronous_commit: "off" } }) ?? deps.database;
    const log = new DeliveryLog({ database: logDatabase, analytics: deps.analytics, clock: deps.clock, logger, intervalMs: this.options.flushIntervalMs, maxDevicesPerUser: this.options.maxDevicesPerUser });
    // A start that fails part-way stops what it started and gives the upgrades back.
    const undo: (() => Promise<void>)[] = [async () => void this.httpServer.off("upgrade", this.onUpgrade)];
    try {
      log.start();
      undo.push(() => log.stop());
      return await this.startRest(deps, logger, metrics, log, undo);
    } catch (err) {
      for (const step of undo.reverse()) await step().catch(() => undefined);
      throw err;
    }
  }

  private async startRest(deps: RealtimeDeps, logger: Logger, metrics: RealtimeMetrics, log: DeliveryLog, undo: (() => Promise<void>)[]): Promise<Started> {
    const reader = new SyncReader(deps.database, this.options.syncLimit, { clock: deps.clock, maxDevicesPerUser: this.options.maxDevicesPerUser });
    const presence = createPresence(deps.bus, deps.instanceId, {
      heartbeatMs: this.options.presenceHeartbeatMs,
      onError: (err) => logger.warn({ err }, "presence update failed"),
      onInstanceLost: async (lost) => {
        await closeSessionsOfInstance(deps.database, lost, deps.clock.now());
        logger.warn({ instance: lost }, "instance lost (presence expired); its websocket sessions closed");
      },
    });
    if (this.options.closeEarlierSessions) await closeSessionsOfEarlierRuns(deps.database, deps.instanceId, deps.clock.now());
    await presence.start();
    undo.push(() => presence.stop());
    const fanout = new Fanout(deps.bus, deps.instanceId, this.hub, logger);
    await fanout.start();
    undo.push(() => fanout.stop());
    // Frames published while the bus was down are gone: every local connection
    // catches up from the database (the per-socket sent-set drops repeats).
    deps.bus.onReconnect(() => {
      const started = this.started;
      if (!started) return;
      logger.info("bus reconnected; resyncing local connections");
      for (const conn of this.hub.connections()) this.sync(started, conn, 0, true);
    });
    const heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs);
    heartbeat.unref();
    this.metricsTimer = setInterval(() => this.syncMetrics(metrics), 1_000);
    this.metricsTimer.unref();
    this.started = { deps, log, reader, presence, fanout, metrics, heartbeat };
    return this.started;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!WS_PATHS.has(pathOf(req))) {
      socket.destroy();
      return;
    }
    socket.on("error", destroyOnError);
    void this.authenticateUpgrade(req, socket, head);
  };

  private async authenticateUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let s: Started;
    try {
      s = await this.ready;
    } catch {
      return refuseUpgrade(socket, 503, "unavailable", "Realtime server failed to start");
    }
    if (this.closing) return refuseUpgrade(socket, 503, "shutting_down", "Server is shutting down");
    const { token, cursor, device } = readHandshake(req);
    if (device === false) return refuseUpgrade(socket, 400, "invalid_device", "device must be 1 to 64 letters, digits, '-' or '_'");
    // The address's failed authentications, over HTTP and here together. As over HTTP, the token is verified
    // first (HS256 in microseconds, JWKS keys cached): a valid one connects whatever strangers behind the same
    // NAT or proxy address failed; only failures are counted and, past the budget, answered 429.
    const address = this.authFailures.addressOf(req);
    let principal: Principal;
    try {
      principal = await s.deps.auth.authenticate(token);
    } catch (err) {
      return this.authenticationFailed(s, socket, token, address, err instanceof Error ? err.message : "Invalid token");
    }
    if (principal.kind !== "provider") {
      // An admin credential (API key or admin token) is answered exactly like a wrong token, and spends the
      // address's budget like one. A 403 here told whoever guessed an API key that the guess was right, and
      // without a limit; counting a distinct 403 as a failure would still confirm every right guess within
      // the budget. Only the same status, body and count leak nothing ("Invalid token" is what any
      // unverifiable string gets).
      return this.authenticationFailed(s, socket, token, address, "Invalid token");
    }
    if (!this.allowConnect(principal.userId)) {
      s.metrics.errors.inc({ reason: "connect_rate_limited" });
      // The REST API's 429: problem body, Retry-After and RateLimit-* (the burst is the limit).
      const seconds = this.connectBuckets.get(principal.userId)!.secondsUntilToken(Date.now());
      return refuseUpgradeWithProblem(socket, problem("HERALD_RATE_LIMITED", `Too many connection attempts; retry in ${seconds} s`), {
        "Retry-After": seconds,
        "RateLimit-Limit": this.options.connectBurst,
        "RateLimit-Remaining": 0,
        "RateLimit-Reset": seconds,
      });
    }
    if (this.closing) return refuseUpgrade(socket, 503, "shutting_down", "Server is shutting down");
    if (socket.destroyed) return;
    const { userId, expiresAt } = principal;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onOpen(s, ws, req, userId, expiresAt, cursor, device));
  }

  /** 401, counted against the address when a credential was offered; 429 when that count went past the budget. */
  private async authenticationFailed(s: Started, socket: Duplex, token: string | undefined, address: string, detail: string): Promise<void> {
    const wait = token === undefined ? undefined : await this.authFailures.failed(address);
    if (wait !== undefined) return this.refuseAuthFailures(s, socket, wait);
    s.metrics.errors.inc({ reason: "unauthorized" });
    refuseUpgrade(socket, 401, "unauthenticated", detail);
  }

  /** The REST API's 429: the same problem body and Retry-After. */
  private refuseAuthFailures(s: Started, socket: Duplex, seconds: number): void {
    s.metrics.errors.inc({ reason: "auth_rate_limited" });
    refuseUpgradeWithProblem(socket, problem("HERALD_RATE_LIMITED", `Too many failed authentications; retry in ${seconds} s`), { "Retry-After": seconds });
  }

  private onOpen(s: Started, ws: WebSocket, req: IncomingMessage, userId: string, expiresAt: number, cursor: number, device: string | undefined): void {
    // Limits and hooks are one object for every connection (they need no per-connection state): less memory per idle socket.
    if (!this.shared) {
      this.shared = {
        limits: this.options,
        hooks: {
          onPushed: (id, userId) => s.log.markSent(id, userId),
          onSent: () => {
            this.unsentMetric += 1;
          },
          onSlowConsumer: () => s.metrics.errors.inc({ reason: "slow_consumer" }),
        },
      };
    }
    const conn = new Connection(ws, userId, this.sessions++, this.shared);
    conn.deviceId = device;
    // Registered (and so holding live frames) before the sync query runs.
    this.hub.add(conn);
    this.enforceConnectionCap(userId);
    s.presence.add(userId);
    s.metrics.connections.inc();
    const socket = req.socket;
    const ip = socket.remoteAddress ?? null;
    // Node caches the peer address object on the socket for its lifetime; the row has it now. A private
    // field: test/realtime/peername.test.ts pins the behaviour this relies on.
    (socket as { _peername?: unknown })._peername = undefined;
    // ws has its own error handling on the socket from here on.
    socket.off("error", destroyOnError);
    s.log.sessionOpened({
      id: this.sessionId(conn),
      userId,
      instanceId: s.deps.instanceId,
      ip,
      userAgent: typeof req.headers["user-agent"] === "string" ? req.headers["user-agent"].slice(0, 500) : null,
      at: s.deps.clock.now(),
    });
    // Listeners shared by every socket (they find the connection on the socket): no closures per connection.
    (ws as SocketWithConnection)[CONNECTION] = conn;
    ws.on("pong", this.socketListeners.pong);
    ws.on("message", this.socketListeners.message);
    ws.on("error", this.socketListeners.error);
    ws.on("close", this.socketListeners.close);
    this.expireAt(conn, expiresAt);
    this.sync(s, conn, cursor, true);
  }

  private sessionId(conn: Connection): string {
    return this.sessionPrefix + conn.session.toString(16).padStart(12, "0");
  }

  /** Closes with 4001 once the token's `exp` (whole seconds) has passed. */
  private expireAt(conn: Connection, expiresAt: number): void {
    const second = Math.ceil(expiresAt / 1000);
    if (second * 1000 <= Date.now()) {
      conn.close(CloseCodes.tokenExpired, "token expired");
      return;
    }
    conn.expirySecond = this.expiry.add(second, conn);
    this.startTicking();
  }

  private startTicking(): void {
    if (this.secondTimer) return;
    this.secondTimer = setInterval(() => this.tick(), 1_000);
    this.secondTimer.unref();
  }

  private tick(): void {
    const now = Date.now();
    this.expiry.advance(Math.floor(now / 1000));
    // Forget refilled buckets so the maps stay as small as the set of recent connectors and syncers.
    for (const buckets of [this.connectBuckets, this.syncBuckets]) for (const [userId, bucket] of buckets) if (bucket.isFull(now)) buckets.delete(userId);
    if (this.expiry.size === 0 && this.connectBuckets.size === 0 && this.syncBuckets.size === 0) {
      clearInterval(this.secondTimer);
      this.secondTimer = undefined;
    }
  }

  /** Sends unread_count (on connect) and what this device has not received (sync.ts: after `cursor`, 0 = none; `resume` on (re)connect). */
  private sync(s: Started, conn: Connection, cursor: number, withCount: boolean, resume = true): void {
    conn.beginSync();
    const run = async (): Promise<void> => {
      try {
        const { count, page } = await s.reader.read(conn.userId, cursor, withCount, conn.deviceId ?? null, resume);
        // What this socket already carried (live, since the last page) is not repeated; the cursor still advances past it.
        const notifications = page.notifications.filter((n) => !conn.hasInFlight(n.id));
        const message: ServerMessage = { type: "sync", notifications, cursor: page.cursor, ...(page.truncated ? { truncated: true } : {}) };
        // Where this device now is (an empty page's cursor, else just before the page's oldest row) was
        // stored by the read itself (sync.ts), whether or not its acks ever arrive.
        // The badge goes just before the page, in the same socket write (connection.ts writeTogether).
        const badge = count === undefined ? undefined : { text: JSON.stringify({ type: "unread_count", count } satisfies ServerMessage) };
        conn.endSync({ text: JSON.stringify(message) }, notifications.map((n) => n.id), badge);
        if (conn.state !== "closed") for (const n of notifications) if (n.deliveryStatus === "pending") s.log.markSent(n.id, conn.userId);
      } catch (err) {
        s.deps.logger.warn({ err, userId: conn.userId }, "sync failed");
        conn.abortSync();
      }
    };
    // Syncs of one connection run in order; the chain is dropped once it is drained (idle sockets hold no promise).
    const chain: Promise<void> = conn.syncChain ? conn.syncChain.then(run) : run();
    conn.syncChain = chain;
    void chain.then(() => {
      if (conn.syncChain === chain) conn.syncChain = undefined;
    });
  }

  private onMessage(s: Started, conn: Connection, data: RawData, isBinary: boolean): void {
    s.metrics.messagesReceived.inc();
    conn.alive = true;
    if (!conn.admit(Date.now())) {
      s.metrics.errors.inc({ reason: "rate_limited" });
      return;
    }
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
    const parsed = isBinary ? ({ ok: false, code: "invalid_message", message: "Binary messages are not supported" } as const) : parseClientMessage(text);
    if (!parsed.ok) {
      s.metrics.errors.inc({ reason: parsed.code });
      conn.send({ type: "error", code: parsed.code, message: parsed.message });
      return;
    }
    const m = parsed.message;
    switch (m.type) {
      case "ping":
        conn.send({ type: "pong" });
        return;
      case "ack":
        for (const id of "ids" in m ? m.ids : [m.id]) s.log.markDelivered(id, conn.userId, conn.deviceId);
        return;
      case "sync":
        // With a cursor: the next page, strictly after it; without: resume as on connect.
        this.requestSync(s, conn, () => this.sync(s, conn, m.cursor ?? 0, false, !m.cursor));
        return;
      case "read":
        this.read(s, conn, m.id);
        return;
    }
  }

  /**
   * A client's `sync`. While one of this connection's syncs runs, later
   * requests are coalesced into one that runs after it (the latest wins), and
   * every read is paid from the user's bucket, so no client can queue reads
   * faster than the database serves them (others' syncs and counts wait behind).
   */
  private requestSync(s: Started, conn: Connection, run: () => void): void {
    if (conn.syncChain) {
      const waiting = conn.queuedSync !== undefined;
      conn.queuedSync = run;
      if (!waiting) {
        void conn.syncChain.then(() => {
          const next = conn.queuedSync;
          conn.queuedSync = undefined;
          if (next && conn.state !== "closed") this.paidSync(s, conn, next);
        });
      }
      return;
    }
    this.paidSync(s, conn, run);
  }

  private paidSync(s: Started, conn: Connection, run: () => void): void {
    if (this.take(this.syncBuckets, conn.userId, this.options.syncsPerSecond, this.options.syncBurst)) {
      run();
      return;
    }
    s.metrics.errors.inc({ reason: "sync_rate_limited" });
    conn.send({ type: "error", code: "sync_rate_limited", message: "Too many sync requests; retry in a few seconds" });
  }

  /** Beyond maxConnectionsPerUser here, the user's oldest connections are closed (4009), so a new tab always gets in. */
  private enforceConnectionCap(userId: string): void {
    const open = this.hub.of(userId).filter((c) => c.state !== "closed");
    const excess = open.length - this.options.maxConnectionsPerUser;
    for (let i = 0; i < excess; i++) open[i]!.close(CloseCodes.tooManyConnections, "too many connections for this user");
  }

  private read(s: Started, conn: Connection, id: string): void {
    const inbox = this.inbox;
    if (!inbox) {
      conn.send({ type: "error", code: "unavailable", message: "Reading is not available on this server" });
      return;
    }
    inbox.markRead(conn.userId, id).then(
      (ok) => {
        if (!ok) conn.send({ type: "error", code: "not_found", message: "Notification not found" });
      },
      (err: unknown) => {
        s.deps.logger.warn({ err, userId: conn.userId }, "read over websocket failed");
        conn.send({ type: "error", code: "internal", message: "Could not mark the notification read" });
      },
    );
  }

  private readonly socketListeners = (() => {
    const server = this;
    const connOf = (ws: WebSocket) => (ws as SocketWithConnection)[CONNECTION]!;
    return {
      pong(this: WebSocket): void {
        connOf(this).alive = true;
      },
      message(this: WebSocket, data: RawData, isBinary: boolean): void {
        server.onMessage(server.started!, connOf(this), data, isBinary);
      },
      error(this: WebSocket, err: Error): void {
        const s = server.started!;
        s.metrics.errors.inc({ reason: "socket_error" });
        s.deps.logger.debug({ err: err.message, userId: connOf(this).userId }, "websocket error");
      },
      close(this: WebSocket, code: number, reason: Buffer): void {
        server.onClosed(server.started!, connOf(this), code, reason.toString());
      },
    };
  })();

  private onClosed(s: Started, conn: Connection, code: number, reason: string): void {
    conn.disposed();
    if (conn.expirySecond !== undefined) this.expiry.remove(conn.expirySecond, conn);
    if (!this.hub.remove(conn)) return;
    s.presence.remove(conn.userId);
    s.metrics.connections.dec();
    const closedWith = conn.closedWith;
    s.log.sessionClosed({ id: this.sessionId(conn), at: s.deps.clock.now(), code: closedWith?.code ?? code, reason: closedWith?.reason ?? reason });
  }

  private allowConnect(userId: string): boolean {
    return this.take(this.connectBuckets, userId, this.options.connectsPerSecond, this.options.connectBurst);
  }

  /** One token from the user's bucket in `buckets` (created full; tick() forgets it once refilled). */
  private take(buckets: Map<string, TokenBucket>, userId: string, ratePerSec: number, burst: number): boolean {
    const now = Date.now();
    let bucket = buckets.get(userId);
    if (!bucket) {
      bucket = new TokenBucket(ratePerSec, burst, now);
      buckets.set(userId, bucket);
      this.startTicking();
    }
    return bucket.take(now);
  }

  /** Pings everyone; drops whoever did not answer the previous ping. */
  private beat(): void {
    for (const conn of this.hub.connections()) {
      if (conn.state === "closed") continue; // already closing with its own code
      if (!conn.alive) {
        conn.closedWith = { code: 1006, reason: "heartbeat timeout" };
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.socket.ping();
      } catch {
        conn.socket.terminate();
      }
    }
  }

  /** Registers the notification domain's handling of client `read` messages. */
  useInbox(inbox: InboxActions): void {
    this.inbox = inbox;
  }

  /** Pushes a new notification to every live connection of its user, on any instance. */
  async publishNotification(notification: NotificationDto, presentation: Presentation): Promise<void> {
    const s = await this.ready;
    await s.fanout.notification(notification, presentation);
  }

  /**
   * Pushes one broadcast to the live connections of the given recipients on
   * every instance; the shared part is serialized once, not once per socket.
   */
  async publishBroadcast(base: BroadcastBase, recipients: BroadcastRecipient[]): Promise<void> {
    const s = await this.ready;
    await s.fanout.broadcast(base, recipients);
  }

  /** True when the user has a live connection on any instance. */
  async isOnline(userId: string): Promise<boolean> {
    const s = await this.ready;
    return this.hub.has(userId) || s.presence.isOnline(userId);
  }

  /** Sends a protocol message to every live connection of a user, on any instance. */
  async publishToUser(userId: string, message: ServerMessage): Promise<void> {
    const s = await this.ready;
    await s.fanout.toUser(userId, message);
  }

  /** Closes every live connection of the user, on any instance, with `code` (e.g. CloseCodes.userErased). */
  async disconnectUser(userId: string, code: number, reason: string): Promise<void> {
    const s = await this.ready;
    await s.fanout.disconnect(userId, code, reason);
  }

  /** Connections cluster-wide (this instance exactly; others as of their last presence update). */
  getConnectedClientsCount(): number {
    return this.started ? this.started.presence.connectionCount() : this.hub.size;
  }

  /** Users connected anywhere in the cluster. */
  getConnectedProviders(): string[] {
    return this.started ? this.started.presence.users() : [];
  }

  /** Connections on this instance only. */
  getLocalConnectionsCount(): number {
    return this.hub.size;
  }

  /** Bytes queued in this instance's sockets and not yet written to the network (bounded per socket by maxBufferedBytes). */
  getBufferedBytes(): number {
    let total = 0;
    for (const conn of this.hub.connections()) total += conn.socket.bufferedAmount;
    return total;
  }

  /**
   * Resolves once the sent and delivered marks, device cursors and session rows buffered before
   * the call are written (they are otherwise written every `flushIntervalMs`).
   */
  async flushDeliveryLog(): Promise<void> {
    await (await this.ready).log.flush();
  }

  /** Closes every socket with 1001 and flushes pending writes. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.httpServer.off("upgrade", this.onUpgrade);
      let s: Started;
      try {
        s = await this.ready;
      } catch {
        return;
      }
      clearInterval(s.heartbeat);
      clearInterval(this.metricsTimer);
      clearInterval(this.secondTimer);
      this.secondTimer = undefined;
      this.syncMetrics(s.metrics);
      await Promise.all(
        [...this.hub.connections()].map(
          (conn) =>
            new Promise<void>((resolve) => {
              if (conn.socket.readyState === conn.socket.CLOSED) return resolve();
              conn.socket.once("close", () => resolve());
              conn.close(CloseCodes.goingAway, "server shutting down");
            }),
        ),
      );
      await s.fanout.stop();
      await s.presence.stop();
      await s.log.stop();
      this.wss.close();
    })();
    return this.closing;
  }
}

/** Until ws owns the socket, a socket error just drops it (one function for every socket, no closure each). */
function destroyOnError(this: Duplex): void {
  this.destroy();
}
