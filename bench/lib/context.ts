/** Shared set-up for benchmark cases: Herald on real PostgreSQL (or on embedded PGlite), users, tokens. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { MemoryBus } from "../../src/bus/index.js";
import { migrate, openDatabase } from "../../src/db/index.js";
import { startTestHerald, type StartOptions, type TestHerald } from "../../test/support/herald.js";

export interface BenchOptions {
  quick: boolean;
  /** Rounds: each case alternates Herald and its baseline this many times. */
  rounds: number;
}

export function requirePostgres(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("benchmarks run against real PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test");
  return url;
}

export async function startBenchHerald(options: StartOptions = {}): Promise<TestHerald> {
  requirePostgres();
  return startTestHerald({ ...options, env: { HERALD_RATE_LIMIT_PER_MINUTE: "100000000", ...options.env } });
}

/**
 * Herald as the embedded default runs it: PGlite persisted in a directory of
 * its own (in this process) and the in-memory bus, even when REDIS_URL is set.
 */
export async function startEmbeddedHerald(options: StartOptions = {}): Promise<TestHerald> {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-bench-pglite-"));
  const database = await openDatabase({ dataDir: dir });
  await migrate(database);
  const bus = new MemoryBus();
  const h = await startTestHerald({
    ...options,
    bus,
    sharedDatabase: Object.assign(database, { label: "pglite", cleanup: () => database.close() }),
    env: { HERALD_RATE_LIMIT_PER_MINUTE: "100000000", ...options.env },
  });
  return {
    ...h,
    async stop() {
      await h.stop();
      await bus.close();
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates `count` users `${prefix}${i}` in the directory with one statement. */
export async function seedUsers(h: TestHerald, count: number, prefix = "u"): Promise<string[]> {
  await h.database.query(
    "INSERT INTO users (id, email, timezone) SELECT $1 || g, $1 || g || '@bench.test', 'UTC' FROM generate_series(0, $2 - 1) g ON CONFLICT DO NOTHING",
    [prefix, count],
  );
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

export async function wsUrlsFor(h: TestHerald, users: string[]): Promise<string[]> {
  return Promise.all(users.map(async (u) => `${h.wsUrl}/ws?token=${await h.tokenFor(u, "2h")}`));
}
