/**
 * The composition root: builds config, runtime (database, bus, cache...), the
 * http.Server, the services and the HTTP app, and hands start and stop to one
 * Lifecycle: components start in order and stop in reverse.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { AnalyticsService } from "./analytics/index.js";
import { OutOfAppDelivery } from "./channels/index.js";
import { type Config, loadConfig } from "./config/index.js";
import { EmailDigestService } from "./digests/index.js";
import { buildHttpApp } from "./http/index.js";
import { Lifecycle } from "./lifecycle.js";
import { createLimits } from "./limits/index.js";
import { createMailer, mailerOptions } from "./mail/index.js";
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
  /** Listens on `port` (0 = any), starts the jobs, and resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Graceful stop: no new connections, sockets closed with 1001, jobs and batches flushed, database closed. */
  stop(): Promise<void>;
}

/** Builds and starts everything but the listening socket and the jobs (listen() adds those). */
export async function createHerald(options: HeraldOptions = {}): Promise<Herald> {
  const config = options.config ?? loadConfig();
  const lifecycle = new Lifecycle();
  try {
    return await assemble(config, options, lifecycle);
  } catch (err) {
    await lifecycle.stop().catch(() => undefined);
    throw err;
  }
}

async function assemble(config: Config, options: HeraldOptions, lifecycle: Lifecycle): Promise<Herald> {
  const runtime = await createRuntime(config, options);
  await lifecycle.start({ name: "runtime", start: () => runtime.start(), stop: () => runtime.close() });

  // One set of counters and one address rule for the HTTP limits and the WebSocket upgrades: a failed
  // authentication spends the address's one budget whichever way it came.
  const limits = await createLimits({
    trustProxy: config.trustProxy,
    authFailuresPerMinute: config.authFailureRateLimitPerMinute,
    redis: runtime.redis?.client,
    redisPrefix: runtime.redis?.prefix,
  });
  await lifecycle.start({ name: "limits", stop: () => limits.close() });

  // One SMTP transport (or outbox) for digests and notification e-mails.
  const mailer = createMailer(mailerOptions(config));
  await lifecycle.start({ name: "mailer", stop: () => mailer.close() });

  // The http.Server exists before the services: the WebSocket server takes its upgrades, Fastify its requests.
  const server = createServer();
  // A process that opened its own database and has no Redis is that database's only server:
  // sessions still open at start were left by a crashed run.
  const soleServer = !options.database && !runtime.redis;
  const realtime = new NotificationWebSocketServer(server, runtime, { closeEarlierSessions: soleServer, ...config.realtime, ...options.realtime }, limits);
  const notifications = new NotificationService(realtime, runtime);
  // Started before http, so it stops after it (no creation arrives any more) and before the database closes.
  await lifecycle.start({ name: "creations", stop: () => notifications.close() });
  const users = new UserDirectory(runtime);
  const analytics = new AnalyticsService(runtime);
  const digests = new EmailDigestService(undefined, { ...runtime, mailer }, config.digestTuning);
  const delivery = new OutOfAppDelivery(runtime, { mailer });

  const app = await buildHttpApp(
    {
      config,
      database: runtime.database,
      auth: runtime.auth,
      logger: runtime.logger,
      metrics: runtime.metrics,
      redis: runtime.redis?.client,
      redisPrefix: runtime.redis?.prefix,
      limits,
      realtime,
      notifications,
      digests,
      users,
      analytics,
    },
    { serveWeb: options.serveWeb, server },
  );
  await lifecycle.start({ name: "http", start: async () => void (await app.ready()), stop: () => app.close() });
  // After http, so that it stops first: its sockets close with 1001 before the http.Server waits for its connections.
  await lifecycle.start({ name: "realtime", start: () => realtime.start(), stop: () => realtime.close() });
  // Stops the digest service's scheduler, if listen() started it, and closes any mailer it made for itself.
  await lifecycle.start({ name: "digests", stop: () => digests.stop() });

  let listening = false;
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
      if (listening) throw new Error("Herald is already listening");
      listening = true;
      // A reconnect storm (every client of a restarted instance at once)
      // overflows Node's default accept queue of 511: dropped SYNs come back
      // 1, 3, 7 s later. The kernel caps this at net.core.somaxconn.
      try {
        await app.listen({ port, host, backlog: LISTEN_BACKLOG });
      } catch (err) {
        listening = false; // e.g. EADDRINUSE: another port may be tried
        throw err;
      }
      // A job that fails to start stops the whole Herald (the Lifecycle undoes), and listen() rejects.
      if (options.jobs !== false) {
        // Stopped by the "digests" component above.
        await lifecycle.start({ name: "digest scheduler", start: () => digests.initializeScheduledJobs() });
        await lifecycle.start({ name: "delivery worker", start: () => delivery.start(), stop: () => delivery.stop() });
      }
      const address = app.server.address() as AddressInfo;
      return `http://${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${address.port}`;
    },
    stop: () => lifecycle.stop(),
  };
}
