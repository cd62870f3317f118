/** What the HTTP layer is given by the composition root: services, never globals. */
import type { Registry } from "prom-client";
import type { AnalyticsService } from "../analytics/index.js";
import type { Authenticator } from "../auth/index.js";
import type { Config } from "../config/index.js";
import type { Database } from "../db/index.js";
import type { EmailDigestService } from "../digests/index.js";
import type { NotificationService } from "../notifications/index.js";
import type { Limits } from "../limits/index.js";
import type { Logger } from "../observability/index.js";
import type { NotificationWebSocketServer } from "../realtime/index.js";
import type { UserDirectory } from "../users/index.js";

export interface HttpServices {
  config: Config;
  database: Database;
  auth: Authenticator;
  logger: Logger;
  metrics: Registry;
  /** The ioredis client when REDIS_URL is set: shared rate-limit store. */
  redis?: import("ioredis").Redis | undefined;
  /** The bus's key prefix ("herald:" by default); the rate-limit counters live under it. */
  redisPrefix?: string | undefined;
  /** Counters, address rule and failed-authentication budget, shared with the WebSocket upgrades; built from config, redis and redisPrefix when absent. */
  limits?: Limits | undefined;
  realtime: NotificationWebSocketServer;
  notifications: NotificationService;
  users: UserDirectory;
  digests: EmailDigestService;
  analytics: AnalyticsService;
}

declare module "fastify" {
  interface FastifyInstance {
    services: HttpServices;
  }
}
