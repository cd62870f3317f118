/**
 * Backup and restore of an embedded DATA_DIR: the PGlite database and the
 * secrets Herald generated beside it (jwt-secret, vapid.json,
 * webhook-secret), without which a restored instance would refuse every
 * token, lose every push subscription and sign webhooks with a new key.
 *
 * A backup is a gzipped tar: herald-backup.json (what it holds), pgdata.tar
 * (PGlite's dump) and the secret files. A file written by an earlier Herald
 * (PGlite's dump alone) still restores, database only. The caller holds the
 * DATA_DIR lock.
 */
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { PGlite } from "@electric-sql/pglite";
import { dumpEmbeddedDatabase, pgdataOf, secureDataDir } from "../db/index.js";
import { type TarEntry, packTar, unpackTar } from "./tar.js";

/** The secret files generated into DATA_DIR when the environment gives none. */
export const BACKED_UP_SECRETS = ["jwt-secret", "vapid.json", "webhook-secret"] as const;
const MANIFEST = "herald-backup.json";
const DATABASE = "pgdata.tar";

/** Writes `file` (0600) from the locked directory `dir`; returns what it holds ("database" and secret file names). */
export async function writeBackup(dir: string, file: string): Promise<string[]> {
  const pgdata = pgdataOf(dir);
  // PGlite would create an empty database there and back that up.
  if (!existsSync(pgdata)) throw new Error(`there is no embedded database to back up in ${pgdata}`);
  const database = await dumpEmbeddedDatabase(dir);
  const secrets = BACKED_UP_SECRETS.filter((name) => existsSync(path.join(dir, name))).map((name) => ({ name, data: readFileSync(path.join(dir, name)) }));
  const manifest = { format: "herald-backup", version: 1, createdAt: new Date().toISOString(), files: [DATABASE, ...secrets.map((s) => s.name)] };
  const archive = gzipSync(packTar([{ name: MANIFEST, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }, { name: DATABASE, data: database }, ...secrets]));
  // Every row and the secrets: owner-only, whatever the umask (chmod too, for a file that existed).
  writeFileSync(file, archive, { mode: 0o600 });
  chmodSync(file, 0o600);
  return ["database", ...secrets.map((s) => s.name)];
}

export interface Restored {
  /** "database" and the secret files written. */
  readonly restored: string[];
  /** What was there before and now carries `suffix`. */
  readonly keptAside: string[];
  readonly suffix: string;
}

/**
 * Restores `file` into the locked directory `dir` (new, empty or in use
 * before): the database is loaded and checked beside the old one first, so a
 * bad file changes nothing; then what it replaces is renamed with a
 * `.before-restore-<time>` suffix. Secret files the backup does not hold are
 * left as they are.
 */
export async function restoreBackup(dir: string, file: string): Promise<Restored> {
  const { database, secrets } = readBackup(readFileSync(file), file);
  const suffix = `.before-restore-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  const staging = path.join(dir, `pgdata.restoring${suffix}`);
  try {
    const client = await PGlite.create(staging, { loadDataDir: new Blob([new Uint8Array(database)]) });
    try {
      await client.query("SELECT 1");
    } finally {
      await client.close();
    }
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`${file} does not hold a database Herald can open (${err instanceof Error ? err.message : String(err)})`);
  }
  const keptAside: string[] = [];
  const putAside = (name: string) => {
    const target = path.join(dir, name);
    if (!existsSync(target)) return;
    renameSync(target, `${target}${suffix}`);
    keptAside.push(name);
  };
  putAside("pgdata");
  renameSync(staging, pgdataOf(dir));
  const restored = ["database"];
  for (const { name, data } of secrets) {
    const target = path.join(dir, name);
    restored.push(name);
    if (existsSync(target) && readFileSync(target).equals(data)) continue;
    putAside(name);
    writeFileSync(target, data, { mode: 0o600, flag: "wx" });
  }
  secureDataDir(dir);
  return { restored, keptAside, suffix };
}

/** The database dump and the secret files of a backup, or of an earlier Herald's (the dump alone). */
function readBackup(bytes: Buffer, file: string): { database: Buffer; secrets: TarEntry[] } {
  let entries: TarEntry[] | undefined;
  try {
    entries = unpackTar(gunzipSync(bytes));
  } catch {
    entries = undefined;
  }
  if (!entries?.some((e) => e.name === MANIFEST)) return { database: bytes, secrets: [] };
  const database = entries.find((e) => e.name === DATABASE);
  if (!database) throw new Error(`${file} has no ${DATABASE}: not a complete Herald backup`);
  const known: readonly string[] = BACKED_UP_SECRETS;
  return { database: database.data, secrets: entries.filter((e) => known.includes(e.name)) };
}
