/**
 * A backup taken on one DATA_DIR, restored into a directory that does not
 * exist yet and started there: the tokens of the first server are accepted,
 * its notifications are there and the Web Push key is the one browsers
 * subscribed with. The restored server (no demo tokens) prints a curl line
 * that pastes as is once the admin token it says how to mint is exported.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { type HeraldProcess, freePort, spawnHerald } from "../support/process.js";

const run = promisify(execFile);
const root = mkdtempSync(path.join(tmpdir(), "herald-backup-restore-"));
const children: HeraldProcess[] = [];
afterAll(async () => {
  for (const p of children) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(children.map((p) => p.exited));
  rmSync(root, { recursive: true, force: true });
});

const cli = (args: string[], dataDir: string) =>
  run(process.execPath, ["--conditions=herald-source", "--import", "tsx", "src/cli/main.ts", ...args], { env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir } });

async function start(dataDir: string, env: Record<string, string> = {}): Promise<{ proc: HeraldProcess; base: string }> {
  const port = await freePort();
  const proc = spawnHerald({ WEBSOCKET_PORT: String(port), HOST: "127.0.0.1", APP_URL: `http://127.0.0.1:${port}`, DATA_DIR: dataDir, LOG_LEVEL: "warn", ...env });
  children.push(proc);
  await proc.waitFor(/Try: curl .*\n/, 300_000);
  return { proc, base: `http://127.0.0.1:${port}` };
}

async function stop(proc: HeraldProcess): Promise<void> {
  proc.child.kill("SIGTERM");
  expect((await proc.exited).code).toBe(0);
}

const vapidKey = async (base: string) => ((await (await fetch(`${base}/api/push/vapid-public-key`)).json()) as { publicKey: string }).publicKey;

describe("backup on one DATA_DIR, restore into another", () => {
  it("keeps the tokens, the notifications and the Web Push key", async () => {
    const first = path.join(root, "first");
    const { proc, base } = await start(first);
    const admin = /Admin token: (\S+)/.exec(proc.output())![1]!;
    const provider = /Demo provider token \(sub=demo-provider\): (\S+)/.exec(proc.output())![1]!;
    const created = await fetch(`${base}/api/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ userId: "demo-provider", type: "new_message", title: "Before the backup", message: "kept" }),
    });
    expect(created.status).toBe(201);
    const key = await vapidKey(base);
    await stop(proc);

    const file = path.join(root, "herald.tar.gz");
    expect((await cli(["backup", file], first)).stdout).toContain("database, jwt-secret, vapid.json");
    const second = path.join(root, "elsewhere", "data");
    const restored = (await cli(["restore", file], second)).stdout;
    expect(restored.trim()).toBe(`restored ${file} into ${second}: database, jwt-secret, vapid.json`);

    const again = await start(second, { HERALD_DEMO_TOKENS: "false" });
    const inbox = await fetch(`${again.base}/api/notifications`, { headers: { authorization: `Bearer ${provider}` } });
    expect(inbox.status).toBe(200);
    expect(((await inbox.json()) as { notifications: { title: string }[] }).notifications.map((n) => n.title)).toContain("Before the backup");
    expect(await vapidKey(again.base)).toBe(key);

    // The printed lines, pasted into a shell as they are, mint an admin token and create a notification.
    const out = again.proc.output();
    expect(out).not.toMatch(/<admin token>|Admin token: ey/);
    const mint = /export HERALD_ADMIN_TOKEN=(\$\(npm run --silent herald -- token --sub ops --admin\))/.exec(out)?.[1];
    const curl = /Try: (curl .*)/.exec(out)?.[1];
    expect(mint, out).toBeDefined();
    expect(curl, out).toContain('"authorization: Bearer $HERALD_ADMIN_TOKEN"');
    const shell = await run("bash", ["-c", `set -e; export HERALD_ADMIN_TOKEN=${mint}; ${curl} --silent --output /dev/null --write-out '%{http_code}'`], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATA_DIR: second },
    });
    expect(shell.stdout).toBe("201");
    await stop(again.proc);
  }, 900_000);
});
