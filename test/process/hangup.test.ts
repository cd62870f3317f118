/**
 * `npm start` in a terminal that closes: the kernel hangs the terminal up and
 * sends SIGHUP. Run in a real pseudo-terminal (util-linux `script`), because
 * what broke there does not show with pipes: Node's default death by the
 * signal left the embedded database unclean, and a plain handler hung for
 * ever (pino's flush at exit retried the hung-up terminal's EIO) or crashed
 * in Node's exit path restoring the terminal's mode.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../support/process.js";

const dirs: string[] = [];
const terminals: ChildProcess[] = [];
const pids: number[] = [];
afterAll(() => {
  for (const t of terminals) t.kill("SIGKILL");
  for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The process exists and is not a zombie (it is not this process's child: nothing here reaps it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** pg_control's DBState: 1 when the cluster was shut down cleanly, 6 while it runs (or after a crash). */
function clusterState(dataDir: string): number {
  return readFileSync(path.join(dataDir, "pgdata", "global", "pg_control")).readInt32LE(16);
}

/** util-linux `script` (Debian's essential bsdutils) and /proc: Linux only; elsewhere this file says it skipped. */
const canRunInPseudoTerminal = process.platform === "linux" && existsSync("/usr/bin/script");

describe.runIf(canRunInPseudoTerminal)("npm start whose terminal closes", () => {
  it.each(["info", "silent"])("stops gracefully (the embedded database shut down cleanly) and ends, at log level %s", async (level) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "herald-hup-"));
    dirs.push(dataDir);
    const port = await freePort();
    // `script` runs the command as the session leader of a new pseudo-terminal; exec keeps the shell's pid.
    const command = `echo "herald-pid $$"; exec '${process.execPath}' --conditions=herald-source --import tsx src/main.ts`;
    const terminal = spawn("script", ["--quiet", "--flush", "--command", command, "/dev/null"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", SHELL: "/bin/sh", DATA_DIR: dataDir, WEBSOCKET_PORT: String(port), LOG_LEVEL: level },
      stdio: ["pipe", "pipe", "pipe"],
    });
    terminals.push(terminal);
    let out = "";
    terminal.stdout!.on("data", (c: Buffer) => (out += c.toString("utf8")));
    terminal.stderr!.on("data", (c: Buffer) => (out += c.toString("utf8")));
    await expect.poll(() => out, { timeout: 150_000, interval: 100 }).toContain("Herald is running at");
    const pid = Number(/herald-pid (\d+)/.exec(out)![1]);
    pids.push(pid);
    expect(clusterState(dataDir)).toBe(6);

    // The terminal's other end closes: the kernel hangs up the session Herald leads.
    terminal.kill("SIGKILL");
    await expect.poll(() => alive(pid), { timeout: 20_000, interval: 100 }).toBe(false);
    expect(clusterState(dataDir)).toBe(1);
  }, 180_000);
});
