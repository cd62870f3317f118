/**
 * The suite's global setup (vitest.config.ts): on PGlite, one migrated
 * cluster for the whole run, dumped to a file that every test database
 * loads (openTestDatabase). A new cluster's initdb costs ~2.5-4 s of CPU
 * here and the suite opens ~200; a load costs ~1 s. Built through
 * openDatabase + migrate on a directory, so it is exactly what Herald writes.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { migrate, openDatabase } from "../../src/db/index.js";

/** Where the image is: set for the test processes, which are forked after this setup and inherit it. */
export const PGLITE_IMAGE_ENV = "HERALD_TEST_PGLITE_IMAGE";

export default async function setup(): Promise<(() => void) | undefined> {
  if (process.env.DATABASE_URL) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), "herald-test-image-"));
  try {
    const database = await openDatabase({ dataDir: path.join(dir, "data"), pgliteThread: false });
    await migrate(database);
    await database.close();
    const client = await PGlite.create(path.join(dir, "data", "pgdata"));
    const dump = await client.dumpDataDir("none");
    await client.close();
    const file = path.join(dir, "image.tar");
    writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
    process.env[PGLITE_IMAGE_ENV] = file;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return () => rmSync(dir, { recursive: true, force: true });
}
