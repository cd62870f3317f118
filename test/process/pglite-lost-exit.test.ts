/**
 * `npm start` when the embedded database's worker thread dies (5aaaebe):
 * the process stops and exits with code 1, so a supervisor restarts it, at
 * any moment: serving, or starting up (before it listens).
 * The worker is killed by test/support/kill-pglite-worker.mjs, preloaded
 * into the child. "shutdown took too long" is the 10 s forced exit (code 1
 * too): a stop that hangs on the dead database.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { type HeraldProcess, freePort, spawnHerald } from "../support/process.js";

const preload = fileURLToPath(new URL("../support/kill-pglite-worker.mjs", import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<{ p: HeraldProcess; base: string }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "herald-lost-exit-"));
  dirs.push(dataDir);
  const port = await freePort();
  const p = spawnHerald({ WEBSOCKET_PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "info", NODE_OPTIONS: `--import=${preload}`, HERALD_PGLITE_THREAD: "1", ...env });
  return { p, base: `http://127.0.0.1:${port}` };
}

/** The exit, or a failure naming the output once `ms` passed (the child is then killed). */
async function exitOf(p: HeraldProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill("SIGKILL");
      reject(new Error(`no exit within ${ms} ms; output:\n${p.output()}`));
    }, ms);
  });
  try {
    return (await Promise.race([p.exited, late])).code;
  } finally {
    clearTimeout(timer);
  }
}

describe("npm start with a PGlite worker that dies", () => {
  it("while serving: stops and exits with code 1 (not the forced exit)", async () => {
    const { p, base } = await start();
    await p.waitFor("Herald is running at", 150_000);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    p.child.kill("SIGUSR2");
    expect(await exitOf(p, 30_000)).toBe(1);
    expect(p.output()).toContain("database lost");
    expect(p.output()).not.toContain("shutdown took too long");
  }, 200_000);

  it("while starting (migrations, before listen): exits with code 1 and never serves", async () => {
    const { p } = await start({ HERALD_TEST_KILL_PGLITE: "ready" });
    expect(await exitOf(p, 60_000)).toBe(1);
    expect(p.output()).not.toContain("Herald is running at");
  }, 120_000);
});
