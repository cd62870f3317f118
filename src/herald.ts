/**
 * The composition root: builds config, runtime (database, bus, cache...),
 * services, the HTTP app and the WebSocket server on one http.Server, starts
 * the background jobs, and stops everything in reverse order.
 */
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { AnalyticsService } from "./analytics/index.js";
import { OutOfAppDelivery } from "./channels/index.js";
import { RedisBus } from "./bus/index.js";
import { type Config, loadConfig } from "./config/index.js";
import { EmailDigestService, type SmtpConfig } from "./digests/index.js";
import { buildHttpApp } from "./http/index.js";
import { createLimits } from "./limits/index.js";
import { NotificationService } from "./notifications/index.js";
import { NotificationWebSocketServer, type RealtimeOptions } from "./realtime/index.js";
import { type Runtime, type RuntimeOverrides, createRuntime } from "./runtime.js";
import { UserDirectory } from "./users/index.js";

const LISTEN_BACKLOG = 4096;

export interface HeraldOptions extends RuntimeOverrides {
  config?: Config;
  /** WebSocket limits and periods (heartbeat, buffers, rates); defaults suit production. */
  realtime?: Partial<RealtimeOptions>;
  /** Run the digest scheduler and queue workers (off in most tests). */
  jobs?: boolean;
  serveWeb?: boolean;
}

export interface Herald {
  readonly runtime: Runtime;
  readonly app: FastifyInstance;
  readonly realtime: NotificationWebSocketServer;
  readonly notifications: NotificationService;
  readonly users: UserDirectory;
  readonly digests: EmailDigestService;
  readonly analytics: AnalyticsService;
  /** E-mail, push and SMS delivery queue worker (started by listen() when jobs are on). */
  readonly delivery: OutOfAppDelivery;
  /** Listens on `port` (0 = any) and resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Graceful stop: no new connections, sockets closed with 1001, jobs and batches flushed, database closed. */
  stop(): Promise<void>;
}

export async function createHerald(options: HeraldOptions = {}): Promise<Herald> {
  const config = options.config ?? loadConfig();
  const runtime = await createRuntime(config, options);
  const users = new UserDirectory(runtime);
  const analytics = new AnalyticsService(runtime);
  const redis = runtime.bus instanceof RedisBus ? runtime.bus.client : undefined;
  const redisPrefix = runtime.bus instanceof RedisBus ? runtime.bus.prefix : undefined;
  // One set of counters and one address rule for the HTTP limits and the WebSocket upgrades: a failed
  // authentication spends the address's one budget whichever way it came.
  const limits = await createLimits({ trustProxy: config.trustProxy, authFailuresPerMinute: config.authFailureRateLimitPerMinute, redis, redisPrefix });

  // Fastify owns the http.Server; the WebSocket server attaches to its upgrades.
  let realtime!: NotificationWebSocketServer;
  let notifications!: NotificationService;
  let digests!: EmailDigestService;
  const app = await buildHttpApp(
    {
      config,
      database: runtime.database,
      auth: runtime.auth,
      logger: runtime.logger,
      metrics: runtime.metrics,
      redis,
      redisPrefix,
      limits,
      get realtime() {
        return realtime;
      },
      get notifications() {
        return notifications;
      },
      get digests() {
        return digests;
      },
      users,
      analytics,
    },
    { serveWeb: options.serveWeb },
  );
  // A process that opened its own database and has no Redis is that database's only server:
  // sessions still open at start were left by a crashed run.
  const soleServer = !options.database && runtime.bus.kind === "memory";
  realtime = new NotificationWebSocketServer(app.server, runtime, { closeEarlierSessions: soleServer, ...config.realtime, ...options.realtime }, limits);
  notifications = new NotificationService(realtime, runtime);
  digests = new EmailDigestService(smtpFromConfig(config), runtime, config.digestTuning);
  const delivery = new OutOfAppDelivery(runtime);

  let stopped: Promise<void> | undefined;
  return {
    runtime,
    app,
    realtime,
    notifications,
    users,
    digests,
    delivery,
    analytics,
    async listen(port = config.port, host = config.host) {
      // A reconnect storm (every client of a restarted instance at once)
      // overflows Node's default accept queue of 511: dropped SYNs come back
      // 1, 3, 7 s later. The kernel caps this at net.core.somaxconn.
      await app.listen({ port, host, backlog: LISTEN_BACKLOG });
      if (options.jobs !== false) await digests.initializeScheduledJobs();
      if (options.jobs !== false) delivery.start();
      const address = app.server.address() as AddressInfo;
      return `http://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${address.port}`;
    },
    stop() {
      stopped ??= (async () => {
        await delivery.stop();
        await digests.stop();
        await realtime.close();
        await app.close();
        await limits.close();
        await runtime.close();
      })();
      return stopped;
    },
  };
}

function smtpFromConfig(config: Config): SmtpConfig | undefined {
  const e = config.email;
  if (!e.host) return undefined;
  return {
    host: e.host,
    port: e.port,
    secure: e.secure,
    ...(e.user && e.pass ? { auth: { user: e.user, pass: e.pass } } : {}),
    from: e.from,
  };
}
