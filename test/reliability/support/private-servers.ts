/**
 * Private PostgreSQL and Redis servers for the cases that stop or kill them.
 * The shared servers on 5432 and 6379 are never touched: other suites run
 * against them at the same time.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, readdirSync } from "node:fs";
import { freePort } from "../../support/process.js";

const runAsync = promisify(execFile);
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: "pipe", timeout: 60_000 }).toString();

export interface PrivatePostgres {
  url: string;
  port: number;
  /** Stops at once (no checkpoint, like a crash): connections die mid-flight. */
  stopImmediate(): Promise<void>;
  start(): Promise<void>;
  drop(): void;
}

/** A throw-away cluster through the Debian wrappers; undefined (with the reason) when that is impossible here. */
export async function startPrivatePostgres(): Promise<PrivatePostgres | string> {
  if (!existsSync("/usr/bin/pg_createcluster") || !existsSync("/etc/postgresql")) return "pg_createcluster is not installed";
  const versions = readdirSync("/etc/postgresql");
  if (versions.length === 0) return "no PostgreSQL version under /etc/postgresql";
  const version = versions.sort().at(-1)!;
  const name = `herald_rel_${randomBytes(4).toString("hex")}`;
  const port = await freePort();
  // Asynchronous, so a Herald in this process keeps serving while the server stops and starts.
  const ctlAsync = async (action: string, ...extra: string[]) => {
    await runAsync("pg_ctlcluster", ["--skip-systemctl-redirect", version, name, action, ...extra], { timeout: 60_000 });
  };
  const ctl = (action: string, ...extra: string[]) => run("pg_ctlcluster", ["--skip-systemctl-redirect", version, name, action, ...extra]);
  try {
    run("pg_createcluster", ["--start-conf", "manual", "-p", String(port), version, name, "--", "--auth=trust"]);
    ctl("start");
  } catch (err) {
    try {
      run("pg_dropcluster", ["--stop", version, name]);
    } catch {
      // nothing to drop
    }
    return `could not start a private cluster: ${(err as Error).message.split("\n")[0]}`;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stopImmediate: () => ctlAsync("stop", "-m", "immediate"),
    start: () => ctlAsync("start"),
    drop() {
      try {
        run("pg_dropcluster", ["--stop", version, name]);
      } catch {
        // already gone
      }
    },
  };
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL: no goodbye to clients. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis | string> {
  if (!existsSync("/usr/bin/redis-server")) return "redis-server is not installed";
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    let out = "";
    c.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!out.includes("Ready to accept connections")) {
      if (c.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start: ${out.slice(-300)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await start();
  } catch (err) {
    return (err as Error).message;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      c.kill("SIGKILL");
      await once(c, "exit");
    },
    start,
  };
}
