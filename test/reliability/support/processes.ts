/**
 * Herald as a child process (`src/main.ts`, as `npm start` runs it), for the
 * cases that kill, stop or signal it; and throw-away PostgreSQL databases on
 * the shared server (a whole database, never the shared one's tables).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { mintToken } from "../../../src/auth/index.js";
import { type HeraldProcess, freePort, spawnHerald } from "../../support/process.js";

export const SECRET = "reliability-secret-that-is-long-enough-for-hs256-42";
export const API_KEY = "reliability-api-key";

export interface HeraldNode {
  proc: HeraldProcess;
  port: number;
  baseUrl: string;
  wsUrl: string;
  env: Record<string, string>;
}

/** Starts `src/main.ts` with `env` on `port` and waits until it serves. */
export async function startNode(env: Record<string, string>, port?: number): Promise<HeraldNode> {
  const p = port ?? (await freePort());
  const full = {
    NODE_ENV: "development",
    JWT_SECRET: SECRET,
    HERALD_API_KEYS: API_KEY,
    LOG_LEVEL: "warn",
    HOST: "127.0.0.1",
    // The start-up banner waited for below is printed with the demo tokens, which JWT_SECRET now turns off.
    HERALD_DEMO_TOKENS: "true",
    ...env,
    WEBSOCKET_PORT: String(p),
  };
  const proc = spawnHerald(full);
  await proc.waitFor("Herald is running at", 120_000);
  return { proc, port: p, baseUrl: `http://127.0.0.1:${p}`, wsUrl: `ws://127.0.0.1:${p}`, env: full };
}

export async function kill9(node: HeraldNode): Promise<void> {
  node.proc.child.kill("SIGKILL");
  await node.proc.exited;
}

/** Stops a node for good (SIGTERM, then SIGKILL after 10 s). */
export async function stopNode(node: HeraldNode | undefined): Promise<void> {
  if (!node || node.proc.child.exitCode !== null || node.proc.child.signalCode !== null) return;
  node.proc.child.kill("SIGCONT");
  node.proc.child.kill("SIGTERM");
  const t = setTimeout(() => node.proc.child.kill("SIGKILL"), 10_000);
  await node.proc.exited;
  clearTimeout(t);
}

export const providerToken = (userId: string, expiresIn: string | number = "1h") => mintToken(SECRET, { sub: userId, expiresIn });
export const adminToken = (sub = "reliability-admin") => mintToken(SECRET, { sub, role: "admin", expiresIn: "1h" });

export function tempDir(prefix = "herald-rel-"): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh database on the server of DATABASE_URL, dropped by `drop()`. */
export async function scratchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `herald_rel_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Polls `check` until it returns true or the deadline passes (state written asynchronously). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 30_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
