import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createAuthenticator } from "../../src/auth/index.js";
import { openDatabase } from "../../src/db/index.js";

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), "herald-cli-"));
  dirs.push(d);
  return d;
};
const herald = (args: string[], env: Record<string, string>) =>
  run(process.execPath, ["--conditions=herald-source", "--import", "tsx", "src/cli/main.ts", ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
  });

describe("the herald CLI (embedded database)", () => {
  it("mints provider and admin tokens the server accepts", async () => {
    const secret = "cli-test-secret-0123456789-0123456789-abcdef";
    const auth = createAuthenticator({ secret });
    const provider = (await herald(["token", "--sub", "provider-9"], { JWT_SECRET: secret })).stdout.trim();
    const admin = (await herald(["token", "--sub", "ops", "--admin", "--expires", "1h"], { JWT_SECRET: secret })).stdout.trim();
    expect(await auth.authenticate(provider)).toMatchObject({ kind: "provider", userId: "provider-9" });
    expect(await auth.authenticate(admin)).toMatchObject({ kind: "admin", subject: "ops" });
  });

  it("refuses to mint a token that outlives HERALD_MAX_TOKEN_LIFETIME, with one line naming it", async () => {
    const secret = "cli-test-secret-0123456789-0123456789-abcdef";
    const err = (await herald(["token", "--sub", "p", "--expires", "400d"], { JWT_SECRET: secret }).catch((e: unknown) => e)) as { code: number; stderr: string; stdout: string };
    expect(err.code).toBe(1);
    expect(err.stdout).toBe("");
    expect(err.stderr.trim()).toMatch(/^herald: --expires 400d is longer than HERALD_MAX_TOKEN_LIFETIME \(2592000 s\)$/);
  });

  it("migrates, backs up and restores the embedded database with its rows", async () => {
    const source = tempDir();
    const target = tempDir();
    const file = path.join(tempDir(), "backup.tar.gz");
    expect((await herald(["migrate"], { DATA_DIR: source })).stdout).toMatch(/applied .*0001_init\.sql/);
    expect((await herald(["migrate"], { DATA_DIR: source })).stdout).toContain("up to date");
    const db = await openDatabase({ dataDir: source });
    await db.query("INSERT INTO users (id, email) VALUES ('kept-user', 'kept@example.com')");
    await db.close();
    await herald(["backup", file], { DATA_DIR: source });
    // The backup holds every row: owner-only, whatever the umask.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await herald(["restore", file], { DATA_DIR: target });
    const restored = await openDatabase({ dataDir: target });
    expect(await restored.query("SELECT email FROM users WHERE id = 'kept-user'")).toEqual([{ email: "kept@example.com" }]);
    await restored.close();
  }, 120_000);

  it("refuses an unknown command with the usage and exit code 2", async () => {
    const err = (await herald(["frobnicate"], {}).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain("usage: herald");
  });
});
