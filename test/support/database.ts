/**
 * A fresh, migrated database per test file: its own PostgreSQL schema when
 * DATABASE_URL is set (so parallel runs never collide), else in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { type Database, migrate, openDatabase, quoteIdent } from "../../src/db/index.js";

export interface TestDatabase extends Database {
  /** "postgres" or "pglite", for test names. */
  readonly label: string;
  /**
   * PostgreSQL: the file's schema, also every connection's application_name,
   * so an attack on backends (pg_terminate_backend) can pick this file's own
   * and leave other files' connections, in the same database, alone.
   */
  readonly schema?: string;
  /** Drops the schema (PostgreSQL) and closes the connection. */
  cleanup(): Promise<void>;
}

/** Where the suite's migrated PGlite image is (set by test/support/pglite-image.ts). */
export const PGLITE_IMAGE_ENV = "HERALD_TEST_PGLITE_IMAGE";

export const usingPostgres = Boolean(process.env.DATABASE_URL);
export const usingRedis = Boolean(process.env.REDIS_URL);

export async function openTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const database = await openDatabase({ pgliteImage: await migratedImage() });
    await migrate(database);
    return Object.assign(database, { label: "pglite", cleanup: () => database.close() });
  }
  const schema = `t_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
  await admin.end();
  const named = new URL(url);
  named.searchParams.set("application_name", schema);
  const database = await openDatabase({ url: named.toString(), schema, poolSize: options.poolSize ?? 10 });
  await migrate(database);
  let cleaned = false;
  return Object.assign(database, {
    label: "postgres",
    schema,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await database.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      await c.end();
    },
  });
}

/**
 * The migrated PGlite image that test/support/pglite-image.ts (the suite's
 * global setup) wrote for this run, read once per test process; undefined
 * outside such a run (a bench, a lone script), which then opens a new cluster.
 */
let image: Promise<Blob | undefined> | undefined;
function migratedImage(): Promise<Blob | undefined> {
  const file = process.env[PGLITE_IMAGE_ENV];
  image ??= file
    ? readFile(file).then(
        (bytes) => new Blob([bytes]),
        (err: Error) => {
          throw new Error(`${PGLITE_IMAGE_ENV}=${file}: the suite's PGlite image cannot be read (its global setup, test/support/pglite-image.ts, writes it): ${err.message}`);
        },
      )
    : Promise.resolve(undefined);
  return image;
}
