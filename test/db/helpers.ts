/**
 * Databases for the storage tests that need one not yet migrated: a fresh
 * PostgreSQL schema when DATABASE_URL is set, else in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { type Database, openDatabase, quoteIdent } from "../../src/db/index.js";

export interface EmptyDatabase {
  database: Database;
  /** Opens another pool on the same database (PostgreSQL only: two instances). */
  another(): Promise<Database>;
  cleanup(): Promise<void>;
}

export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;

export async function adminQuery(url: string, text: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}

export async function openEmptyDatabase(): Promise<EmptyDatabase> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const database = await openDatabase({});
    return {
      database,
      another: () => Promise.reject(new Error("PGlite is one connection")),
      cleanup: () => database.close(),
    };
  }
  const schema = uniqueName("t_db");
  await adminQuery(url, `CREATE SCHEMA ${quoteIdent(schema)}`);
  const opened: Database[] = [];
  const open = async () => {
    const database = await openDatabase({ url, schema, poolSize: 4 });
    opened.push(database);
    return database;
  };
  return {
    database: await open(),
    another: open,
    async cleanup() {
      await Promise.all(opened.map((d) => d.close()));
      await adminQuery(url, `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    },
  };
}
