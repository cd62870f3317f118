/**
 * The guide's zero-argument constructors (`new NotificationService(wsServer)`,
 * `new NotificationWebSocketServer(server)`, `new EmailDigestService(smtp)`,
 * `new AnalyticsService()`, `new UserDirectory()`), as thin subclasses of the
 * domain classes: each fills in the dependencies it was not given from the
 * runtime built from the environment (`defaultRuntime()`), and the WebSocket
 * server starts itself, as the guide expects. The domain classes take plain,
 * required dependencies and start nothing; createHerald wires and starts them.
 */
import type { Server as HttpServer } from "node:http";
import { AnalyticsService as AnalyticsServiceCore, type AnalyticsDeps } from "./analytics/index.js";
import { type DigestDeps, type DigestTuning, EmailDigestService as EmailDigestServiceCore, type SmtpConfig } from "./digests/index.js";
import { type NotificationDeps, NotificationService as NotificationServiceCore, type RealtimePublisher } from "./notifications/index.js";
import {
  NotificationWebSocketServer as NotificationWebSocketServerCore,
  type RealtimeDeps,
  type RealtimeLimits,
  type RealtimeOptions,
} from "./realtime/index.js";
import { defaultRuntime } from "./runtime.js";
import { UserDirectory as UserDirectoryCore, type UserDirectoryDeps } from "./users/index.js";

export class NotificationWebSocketServer extends NotificationWebSocketServerCore {
  constructor(httpServer: HttpServer, deps: RealtimeDeps = defaultRuntime(), options: Partial<RealtimeOptions> = {}, limits?: RealtimeLimits) {
    super(httpServer, deps, options, limits);
    // A failed start is logged here and rejects every publish and upgrade after it.
    this.start().catch((err: unknown) => deps.logger.error({ err }, "realtime server failed to start"));
  }
}

export class NotificationService extends NotificationServiceCore {
  constructor(realtime: RealtimePublisher, deps: NotificationDeps = defaultRuntime()) {
    super(realtime, deps);
  }
}

export class EmailDigestService extends EmailDigestServiceCore {
  constructor(smtp?: SmtpConfig, deps: DigestDeps = defaultRuntime(), tuning: Partial<DigestTuning> = {}) {
    super(smtp, deps, tuning);
  }
}

export class AnalyticsService extends AnalyticsServiceCore {
  constructor(deps: AnalyticsDeps = defaultRuntime()) {
    super(deps);
  }
}

export class UserDirectory extends UserDirectoryCore {
  constructor(deps: UserDirectoryDeps = defaultRuntime()) {
    super(deps);
  }
}
