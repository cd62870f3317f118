/**
 * The DATA_DIR lock names the directory, not the path used to reach it: a
 * symbolic link, a relative path, a renamed directory and a bind mount of it
 * are all the same directory and all refused while one process holds it; two
 * starters racing on it leave exactly one holder. (The lock was named after
 * the real path, so a bind mount or a rename let a second PGlite open it.)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DataDirInUseError, type DataDirLock, lockDataDir } from "../../src/db/index.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function scratch(): string {
  const root = realpathSync(mkdtempSync(path.join(tmpdir(), "herald-lock-paths-")));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

async function hold(dir: string): Promise<DataDirLock> {
  const lock = await lockDataDir(dir);
  cleanups.push(() => lock.release());
  return lock;
}

const refusal = { name: "DataDirInUseError", pid: process.pid };

describe("the DATA_DIR lock and the paths to one directory", () => {
  it("refuses a symbolic link and a relative path to the held directory", async () => {
    const root = scratch();
    const dir = path.join(root, "data");
    await hold(dir);
    symlinkSync(dir, path.join(root, "link"));
    await expect(lockDataDir(path.join(root, "link"))).rejects.toMatchObject(refusal);
    await expect(lockDataDir(path.relative(process.cwd(), dir))).rejects.toMatchObject(refusal);
    await expect(lockDataDir(`${dir}/./`)).rejects.toMatchObject(refusal);
  });

  it("refuses the held directory after it was renamed", async () => {
    const root = scratch();
    await hold(path.join(root, "before"));
    renameSync(path.join(root, "before"), path.join(root, "after"));
    await expect(lockDataDir(path.join(root, "after"))).rejects.toMatchObject(refusal);
  });

  it("refuses a bind mount of the held directory", async (ctx) => {
    const root = scratch();
    const dir = path.join(root, "data");
    const mountPoint = path.join(root, "mounted");
    mkdirSync(dir);
    mkdirSync(mountPoint);
    try {
      execFileSync("mount", ["--bind", dir, mountPoint], { stdio: "ignore" });
    } catch {
      ctx.skip(); // Needs root (or CAP_SYS_ADMIN).
    }
    cleanups.push(() => void execFileSync("umount", ["-l", mountPoint], { stdio: "ignore" }));
    await hold(dir);
    await expect(lockDataDir(mountPoint)).rejects.toMatchObject(refusal);
  });

  it("gives the directory to exactly one of many starters racing for it", async () => {
    const dir = path.join(scratch(), "data");
    const attempts = await Promise.allSettled(Array.from({ length: 8 }, () => lockDataDir(dir)));
    const won = attempts.filter((a): a is PromiseFulfilledResult<DataDirLock> => a.status === "fulfilled");
    for (const w of won) cleanups.push(() => w.value.release());
    expect(won).toHaveLength(1);
    for (const a of attempts) if (a.status === "rejected") expect(a.reason).toBeInstanceOf(DataDirInUseError);
  });
});
