/**
 * The shared dependencies every component receives: config, database, bus,
 * cache, clock, logger, metrics, analytics sink and authenticator. Built once
 * by the composition root (`createHerald`) or, for the guide's zero-argument
 * constructors, lazily from the environment by `defaultRuntime()`.
 */
import { randomUUID } from "node:crypto";
import type { Registry } from "prom-client";
import { AnalyticsIngest } from "./analytics/ingest.js";
import { type Authenticator, createAuthenticator, ensureJwtSecret } from "./auth/index.js";
import { type Bus, MemoryBus, RedisBus } from "./bus/index.js";
import { type Cache, MemoryCache, RedisCache } from "./cache/index.js";
import { type Config, loadConfig } from "./config/index.js";
import { type Database, migrate, openDatabase } from "./db/index.js";
import { unsubscribeKey } from "./mail/index.js";
import { type Clock, type Logger, createLogger, createMetricsRegistry, systemClock } from "./observability/index.js";

export interface Runtime {
  readonly config: Config;
  readonly database: Database;
  readonly bus: Bus;
  readonly cache: Cache;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly analytics: AnalyticsIngest;
  readonly auth: Authenticator;
  /** HS256 secret in use (configured or generated in DATA_DIR); undefined with JWKS only. */
  readonly jwtSecret: string | undefined;
  /** Signs the one-click unsubscribe links of digests and notification e-mails (see resolveUnsubscribeKey). */
  readonly unsubscribeKey: Buffer;
  /** Names this process in websocket_sessions, queue claims and presence. */
  readonly instanceId: string;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  database?: Database;
  bus?: Bus;
  cache?: Cache;
  clock?: Clock;
  logger?: Logger;
  metrics?: Registry;
  instanceId?: string;
}

export async function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const ownsDatabase = !overrides.database;
  const database =
    overrides.database ??
    (await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      onPoolError: (err) => logger.warn({ err }, "database connection lost"),
    }));
  if (ownsDatabase) await migrate(database);

  const ownsBus = !overrides.bus;
  const bus =
    overrides.bus ??
    (config.redisUrl
      ? new RedisBus(config.redisUrl, "herald:", (err) => logger.warn({ err: err.message }, "redis error"))
      : new MemoryBus());
  const cache =
    overrides.cache ?? (bus instanceof RedisBus ? new RedisCache(bus.client, `${bus.prefix}cache:`) : new MemoryCache(() => clock.now().getTime()));

  let jwtSecret = config.jwtSecret;
  if (!jwtSecret && !config.jwksUrl) {
    if (config.nodeEnv === "production") throw new Error("JWT_SECRET is required in production");
    jwtSecret = ensureJwtSecret(config.dataDir).secret;
  }
  const auth = createAuthenticator({
    secret: jwtSecret,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    apiKeys: config.apiKeys,
    maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds,
    adminClaim: config.jwtAdminClaim,
  });

  const analytics = new AnalyticsIngest({ database, clock, logger });
  analytics.start();

  return {
    config,
    database,
    bus,
    cache,
    clock,
    logger,
    metrics: overrides.metrics ?? createMetricsRegistry(),
    analytics,
    auth,
    jwtSecret,
    unsubscribeKey: resolveUnsubscribeKey(config, jwtSecret),
    instanceId: overrides.instanceId ?? `${process.pid}-${randomUUID().slice(0, 8)}`,
    async close() {
      await analytics.stop();
      if (ownsBus) await bus.close();
      if (ownsDatabase) await database.close();
    },
  };
}

/**
 * The unsubscribe key: from HERALD_UNSUBSCRIBE_SECRET, else the JWT secret in
 * use, else (JWKS only, never in production: src/config refuses it) the
 * secret generated in DATA_DIR. Never a built-in default. Instances must
 * share it, so they must share one of the two variables.
 */
export function resolveUnsubscribeKey(config: Pick<Config, "unsubscribeSecret" | "jwtSecret" | "dataDir">, jwtSecret?: string): Buffer {
  return unsubscribeKey(config.unsubscribeSecret ?? jwtSecret ?? config.jwtSecret ?? ensureJwtSecret(config.dataDir).secret);
}

let shared: Promise<Runtime> | undefined;

/**
 * The runtime built from the environment, shared by components constructed
 * without explicit dependencies (the guide's `new NotificationService(ws)`).
 */
export function defaultRuntime(): Promise<Runtime> {
  shared ??= createRuntime(loadConfig());
  return shared;
}

/** Lets an embedder (or a test) decide what the zero-argument constructors use. */
export function setDefaultRuntime(runtime: Runtime | Promise<Runtime> | undefined): void {
  shared = runtime === undefined ? undefined : Promise.resolve(runtime);
}
