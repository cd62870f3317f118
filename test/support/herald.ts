/**
 * Starts a whole Herald in process on an ephemeral port against a test
 * database, with tokens for a provider and an admin.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { mintToken } from "../../src/auth/index.js";
import { randomUUID } from "node:crypto";
import { type Bus, RedisBus } from "../../src/bus/index.js";
import { loadConfig } from "../../src/config/index.js";
import { type Herald, type HeraldOptions, createHerald } from "../../src/herald.js";
import { type TestDatabase, openTestDatabase } from "./database.js";

export const TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789";

export interface TestHerald {
  herald: Herald;
  database: TestDatabase;
  baseUrl: string;
  wsUrl: string;
  dataDir: string;
  /** A provider token for `userId` (default lifetime 1 h). */
  tokenFor(userId: string, expiresIn?: string | number): Promise<string>;
  adminToken: string;
  stop(): Promise<void>;
}

export interface StartOptions extends Omit<HeraldOptions, "config"> {
  env?: Record<string, string>;
  /** Reuse a database (e.g. two instances sharing one); not cleaned up by stop(). */
  sharedDatabase?: TestDatabase;
  bus?: Bus;
  /**
   * Redis channel/key prefix when REDIS_URL is set; instances that must see
   * each other share one, every other test gets its own so runs never collide.
   */
  busPrefix?: string;
}

export async function startTestHerald(options: StartOptions = {}): Promise<TestHerald> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "herald-test-"));
  try {
    return await startInDataDir(options, dataDir);
  } catch (err) {
    // A start that failed leaves no folder behind in the OS temp directory.
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function startInDataDir(options: StartOptions, dataDir: string): Promise<TestHerald> {
  const database = options.sharedDatabase ?? (await openTestDatabase());
  const config = loadConfig({
    NODE_ENV: "test",
    JWT_SECRET: TEST_SECRET,
    DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    HERALD_API_KEYS: "test-api-key",
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...options.env,
  });
  const ownBus =
    options.bus === undefined && process.env.REDIS_URL
      ? new RedisBus(process.env.REDIS_URL, options.busPrefix ?? `herald-test-${randomUUID()}:`)
      : undefined;
  const herald = await createHerald({ jobs: false, serveWeb: false, ...options, bus: options.bus ?? ownBus, config, database });
  const baseUrl = await herald.listen(0, "127.0.0.1");
  return {
    herald,
    database,
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, "ws"),
    dataDir,
    tokenFor: (userId, expiresIn = "1h") => mintToken(TEST_SECRET, { sub: userId, expiresIn }),
    adminToken: await mintToken(TEST_SECRET, { sub: "admin", role: "admin", expiresIn: "1h" }),
    async stop() {
      await herald.stop();
      await ownBus?.close();
      if (!options.sharedDatabase) await database.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
