/**
 * DATA_DIR belongs to one process at a time, and to its owner only.
 *
 * The lock is a Linux abstract-namespace unix socket named after a hash of
 * the directory's identity (device and inode): every path that reaches the
 * directory (symbolic links, relative paths, bind mounts, a renamed parent)
 * names the same lock, which the real path alone does not. Why this primitive: `bind` is atomic, so of two
 * starters racing exactly one wins (no check-then-create window); the kernel
 * frees the name when the holder dies, even by `kill -9`, so a stale lock
 * cannot exist (proper-lockfile's mtime staleness would make a restart after
 * a crash wait or guess); and nothing is written into the directory. The
 * holder answers a connection with its pid, which names it in the refusal.
 * Abstract names are per network namespace: containers sharing a DATA_DIR
 * volume must share the network namespace too (one container per volume).
 * Elsewhere than Linux a socket file in DATA_DIR stands in; a file left by a
 * crash is taken over when nothing answers on it.
 */
import { createHash } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { type Server, connect, createServer } from "node:net";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";

export interface DataDirLock {
  /** The directory's real path. */
  readonly dir: string;
  release(): Promise<void>;
}

export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
  constructor(
    readonly dir: string,
    readonly pid: number | undefined,
  ) {
    super(`DATA_DIR ${dir} is in use by ${pid === undefined ? "another process" : `process ${pid}`}; stop it first`);
  }
}

const ABSTRACT = process.platform === "linux";

/** Creates `dir` (0700) if needed and takes it, or throws DataDirInUseError. */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const real = realpathSync(dir);
  const address = ABSTRACT ? lockName(real) : path.join(real, ".herald.lock");
  // A holder that dies between our failed bind and our question frees the name: try again.
  for (let attempt = 0; ; attempt++) {
    const server = createServer((socket) => socket.end(`${process.pid}\n`));
    try {
      await listen(server, address);
      server.unref();
      return { dir: real, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
    const answer = await askHolder(address);
    if (answer.alive || attempt >= 2) throw new DataDirInUseError(real, answer.pid);
    if (!ABSTRACT) rmSync(address, { force: true });
  }
}

/** The abstract socket name of a directory: its device and inode, the same through any path to it. */
function lockName(dir: string): string {
  const { dev, ino } = statSync(dir, { bigint: true });
  return `\0herald-data-dir-${createHash("sha256").update(`${dev}:${ino}`).digest("hex").slice(0, 40)}`;
}

function listen(server: Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** The holder's pid; `alive` false when nothing answers (it just died, or a crash left the socket file). */
function askHolder(address: string): Promise<{ alive: boolean; pid: number | undefined }> {
  return new Promise((resolve) => {
    let text = "";
    const socket = connect(address);
    // A holder busy starting may answer late; the refusal then names no pid.
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    socket.on("error", (err: NodeJS.ErrnoException) => resolve({ alive: err.code !== "ECONNREFUSED" && err.code !== "ENOENT", pid: undefined }));
    socket.on("close", () => {
      const pid = Number.parseInt(text, 10);
      resolve({ alive: true, pid: Number.isSafeInteger(pid) && pid > 0 ? pid : undefined });
    });
  });
}

/**
 * Makes `dir` and everything in it owner-only (directories 0700, files
 * 0600): PGlite's initdb writes its files 0666 whatever the umask, and
 * older versions left 0755/0644. Symbolic links are left alone.
 */
export function secureDataDir(dir: string): void {
  const visit = (p: string) => {
    const s = lstatSync(p, { throwIfNoEntry: false });
    if (!s || s.isSymbolicLink()) return;
    if (s.isDirectory()) {
      if ((s.mode & 0o777) !== 0o700) chmodSync(p, 0o700);
      for (const name of readdirSync(p)) visit(path.join(p, name));
    } else if (s.isFile() && (s.mode & 0o777) !== 0o600) {
      chmodSync(p, 0o600);
    }
  };
  visit(dir);
}

/** Where, inside a DATA_DIR, the embedded database keeps its files. */
export function pgdataOf(dataDir: string): string {
  return path.join(dataDir, "pgdata");
}

/**
 * The embedded database of `dataDir` as PGlite's dump (an uncompressed tar,
 * what `loadDataDir` and OpenDatabaseOptions.pgliteImage take). The caller
 * holds the DATA_DIR lock, or the directory is its own (tests' image).
 */
export async function dumpEmbeddedDatabase(dataDir: string): Promise<Buffer> {
  const client = await PGlite.create(pgdataOf(dataDir));
  try {
    return Buffer.from(await (await client.dumpDataDir("none")).arrayBuffer());
  } finally {
    await client.close();
  }
}
