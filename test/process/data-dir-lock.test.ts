/**
 * One owner per embedded data directory: while a Herald serves DATA_DIR, a
 * second start, the CLI's migrate/backup/restore and an in-process open are
 * refused with one line naming the directory and the holder's pid, and change
 * nothing; after `kill -9` of the holder a new start succeeds at once.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/index.js";
import { openDatabase } from "../../src/db/index.js";
import { type HeraldProcess, freePort, spawnHerald } from "../support/process.js";

const run = promisify(execFile);
const dataDir = realpathSync(mkdtempSync(path.join(tmpdir(), "herald-lock-")));
const children: HeraldProcess[] = [];
let holder: HeraldProcess;
let base: string;
let admin: string;

const start = async (port: number) => {
  const p = spawnHerald({ WEBSOCKET_PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "warn" });
  children.push(p);
  return p;
};
const cli = async (args: string[]) =>
  run(process.execPath, ["--conditions=herald-source", "--import", "tsx", "src/cli/main.ts", ...args], {
    env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir },
  }).then(
    () => ({ code: 0, stderr: "" }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
const inUse = (pid: number) => new RegExp(`^herald: (failed to start: )?DATA_DIR ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is in use by process ${pid}\\b[^\\n]*$`);
const inbox = async (token: string) =>
  ((await (await fetch(`${base}/api/notifications`, { headers: { authorization: `Bearer ${token}` } })).json()) as { total: number }).total;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  holder = await start(port);
  await holder.waitFor("Admin token: ", 150_000);
  admin = /Admin token: (\S+)/.exec(holder.output())![1]!;
  const created = await fetch(`${base}/api/notifications`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    // A user without an address: no e-mail lands in the outbox while the directory is compared.
    body: JSON.stringify({ userId: "lock-user", type: "new_message", title: "kept", message: "kept" }),
  });
  expect(created.status).toBe(201);
}, 180_000);

afterAll(async () => {
  for (const p of children) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(children.map((p) => p.exited));
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the DATA_DIR lock", () => {
  it("refuses a second npm start on the same DATA_DIR with one line naming the directory and the holder", async () => {
    const before = readdirSync(dataDir).sort();
    const second = await start(await freePort());
    const { code } = await second.exited;
    expect(code).not.toBe(0);
    expect(second.output().trim()).toMatch(inUse(holder.child.pid!));
    expect(readdirSync(dataDir).sort()).toEqual(before);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
  }, 60_000);

  it("refuses the CLI's migrate and backup while the server runs, and they change nothing", async () => {
    const backup = path.join(tmpdir(), `herald-lock-backup-${process.pid}.tar.gz`);
    const before = readdirSync(dataDir).sort();
    for (const args of [["migrate"], ["backup", backup]]) {
      const result = await cli(args);
      expect(result.code, args.join(" ")).not.toBe(0);
      expect(result.stderr.trim(), args.join(" ")).toMatch(inUse(holder.child.pid!));
    }
    expect(existsSync(backup)).toBe(false);
    expect(readdirSync(dataDir).sort()).toEqual(before);
  }, 60_000);

  it("refuses a restore of an existing backup file while the server runs, leaving pgdata in place", async () => {
    const file = path.join(dataDir, "..", `herald-lock-fake-${process.pid}.tar.gz`);
    writeFileSync(file, "not really a backup");
    try {
      const before = readdirSync(dataDir).sort();
      const result = await cli(["restore", file]);
      expect(result.code).not.toBe(0);
      expect(result.stderr.trim()).toMatch(inUse(holder.child.pid!));
      expect(readdirSync(dataDir).sort()).toEqual(before);
    } finally {
      rmSync(file, { force: true });
    }
  }, 60_000);

  it("refuses an in-process open of the same directory", async () => {
    await expect(openDatabase({ dataDir })).rejects.toThrow(`DATA_DIR ${dataDir} is in use by process ${holder.child.pid}`);
  });

  it("lets a new start take over at once after kill -9 of the holder, with the data intact", async () => {
    holder.child.kill("SIGKILL");
    expect((await holder.exited).signal).toBe("SIGKILL");
    const next = await start(Number(new URL(base).port));
    await next.waitFor("Admin token: ", 150_000);
    const secret = readFileSync(path.join(dataDir, "jwt-secret"), "utf8").trim();
    expect(await inbox(await mintToken(secret, { sub: "lock-user", expiresIn: "1h" }))).toBe(1);
    next.child.kill("SIGTERM");
    expect((await next.exited).code).toBe(0);
  }, 180_000);
});
