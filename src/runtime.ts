/**
 * The shared dependencies every component receives: config, database, bus,
 * cache, clock, logger, metrics, analytics sink and authenticator. Built once
 * by the composition root (`createHerald`), which starts and closes it, or,
 * for the guide's zero-argument constructors, from the environment by
 * `defaultRuntime()`.
 */
import { randomUUID } from "node:crypto";
import type { Registry } from "prom-client";
import { AnalyticsIngest } from "./analytics/index.js";
import { type Authenticator, createAuthenticator, ensureJwtSecret } from "./auth/index.js";
import { type Bus, MemoryBus, RedisBus, type SharedRedis } from "./bus/index.js";
import { type Cache, MemoryCache, NearCache, RedisCache } from "./cache/index.js";
import { type Config, loadConfig } from "./config/index.js";
import { type Database, migrate, openDatabase } from "./db/index.js";
import { unsubscribeKey } from "./mail/index.js";
import { type Clock, type Logger, createLogger, createMetricsRegistry, systemClock } from "./observability/index.js";

/** A roll-up pass's target length on PGlite, ms (RollupWorkerOptions.passBudgetMs). */
const ROLLUP_PASS_BUDGET_MS_PGLITE = 30;

export interface Runtime {
  readonly config: Config;
  readonly database: Database;
  readonly bus: Bus;
  /** The bus's Redis connection when there is one (presence, cache and limits share it). */
  readonly redis: SharedRedis | undefined;
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
  /** Why the database is gone for good (Database.lost, which /health reports), else undefined; for embedders. */
  readonly databaseLost: () => Error | undefined;
  /**
   * Starts the analytics ingest's flush timer and the cache's invalidation
   * listener (with Redis); resolves once the cache listens (it serves no
   * local copy before).
   */
  start(): Promise<void>;
  /** Flushes and stops the ingest, then closes the bus and database it opened (not those it was given). */
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
  /**
   * Called once when a database the runtime opened itself is gone for good
   * (Runtime.databaseLost); `npm start` exits. A database passed in reports
   * through its own opener's onLost.
   */
  onDatabaseLost?: (err: Error) => void;
}

/** Opens (and migrates) the database, then builds the rest; starts nothing. */
export async function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  if (overrides.database) return assembleRuntime(config, overrides.database, false, { ...overrides, logger });
  const database = await openMigrated(config, logger, overrides.onDatabaseLost);
  try {
    return assembleRuntime(config, database, true, { ...overrides, logger });
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
}

async function openMigrated(config: Config, logger: Logger, onLost?: (err: Error) => void): Promise<Database> {
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    onPoolError: (err) => logger.warn({ err }, "database connection lost"),
    onLost: (err) => {
      logger.error({ err }, "the embedded database's worker thread is gone: every query fails until Herald restarts");
      onLost?.(err);
    },
  });
  try {
    await migrate(database);
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
  return database;
}

/** Everything but the database is built synchronously: the guide's zero-argument constructors rely on it. */
function assembleRuntime(config: Config, database: Database, ownsDatabase: boolean, overrides: RuntimeOverrides): Runtime {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
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
  const unsubscribeKey = resolveUnsubscribeKey(config, jwtSecret);
  // Last: everything above may throw, and a Redis bus connects as soon as it exists.
  const ownsBus = !overrides.bus;
  const bus: Bus =
    overrides.bus ??
    (config.redisUrl
      ? new RedisBus(config.redisUrl, "herald:", (err) => logger.warn({ err: err.message }, "redis error"))
      : new MemoryBus());
  const redis = bus.redis;
  const now = () => clock.now().getTime();
  const instanceId = overrides.instanceId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  // With Redis, the per-user entries every creation reads also get a local copy, invalidated over the bus.
  const nearCache =
    !overrides.cache && redis
      ? new NearCache({
          // On the bus's own publishing client (bus.redis): its writes and the invalidations go out in order.
          shared: new RedisCache(redis.client, `${redis.prefix}cache:`),
          sharedWritesOrderedWithBus: true,
          bus,
          sharedAvailable: () => redis.client.status === "ready",
          origin: instanceId,
          now,
          onError: (err) => logger.warn({ err }, "cache invalidation failed"),
        })
      : undefined;
  const cache = overrides.cache ?? nearCache ?? new MemoryCache(now);
  // PGlite's one connection serves nothing else during a roll-up pass: short passes, so no request waits 100+ ms behind one.
  const analytics = new AnalyticsIngest({ database, clock, logger, rollupPassBudgetMs: database.kind === "pglite" ? ROLLUP_PASS_BUDGET_MS_PGLITE : undefined });

  return {
    config,
    database,
    bus,
    redis,
    cache,
    clock,
    logger,
    metrics: overrides.metrics ?? createMetricsRegistry(),
    analytics,
    auth,
    jwtSecret,
    unsubscribeKey,
    instanceId,
    databaseLost: () => database.lost?.(),
    async start() {
      analytics.start();
      await nearCache?.start();
    },
    async close() {
      // The database closes even when a step before it fails: its connections must not outlive stop().
      try {
        await analytics.stop();
        await nearCache?.stop();
        if (ownsBus) await bus.close();
      } finally {
        if (ownsDatabase) await database.close();
      }
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

let shared: Runtime | undefined;

/**
 * The runtime built from the environment for the guide's zero-argument
 * constructors (`new NotificationService(ws)`, src/guide.ts), started on first
 * use. It is built synchronously, so its database opens in the background:
 * the first query waits for it, and an open that failed fails every query.
 */
export function defaultRuntime(): Runtime {
  if (!shared) {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const database = deferredDatabase(config.databaseUrl ? "postgres" : "pglite", openMigrated(config, logger));
    shared = assembleRuntime(config, database, true, { logger });
    // Until its cache listens, reads go to Redis: nothing waits on this.
    shared.start().catch((err: unknown) => logger.warn({ err }, "runtime start failed"));
  }
  return shared;
}

/** Lets an embedder (or a test) decide what the zero-argument constructors use; the caller starts and closes it. */
export function setDefaultRuntime(runtime: Runtime | undefined): void {
  shared = runtime;
}

/** A Database whose every call first waits for `opening`. */
function deferredDatabase(kind: Database["kind"], opening: Promise<Database>): Database {
  let opened: Database | undefined;
  opening.then(
    (database) => (opened = database),
    () => undefined, // surfaced by the first query, not as an unhandled rejection
  );
  return {
    kind,
    query: async (text, params) => (await opening).query(text, params),
    transaction: async (fn) => (await opening).transaction(fn),
    exec: async (script) => (await opening).exec(script),
    connection: async (fn) => (await opening).connection(fn),
    listen: async (channel, onNotify) => (await opening).listen(channel, onNotify),
    ping: async () => (await opening).ping(),
    lost: () => opened?.lost?.(),
    close: async () => (await opening).close(),
  };
}
