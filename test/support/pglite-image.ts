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
import { dumpEmbeddedDatabase, migrate, openDatabase } from "../../src/db/index.js";
import { PGLITE_IMAGE_ENV } from "./database.js";

export default async function setup(): Promise<(() => void) | undefined> {
  if (process.env.DATABASE_URL) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), "herald-test-image-"));
  try {
    const dataDir = path.join(dir, "data");
    const database = await openDatabase({ dataDir, pgliteThread: false });
    await migrate(database);
    await database.close();
    const file = path.join(dir, "image.tar");
    writeFileSync(file, await dumpEmbeddedDatabase(dataDir));
    // The test processes are forked after this setup and inherit it.
    process.env[PGLITE_IMAGE_ENV] = file;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return () => rmSync(dir, { recursive: true, force: true });
}
