import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { afterAll, describe, expect, it } from "vitest";
import { createAuthenticator } from "../../src/auth/index.js";
import { loadConfig, requireSharedSecrets } from "../../src/config/index.js";
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

  it("mints with the server's DATA_DIR/jwt-secret, and never makes a secret of its own", async () => {
    const dataDir = tempDir();
    const missing = path.join(dataDir, "never-started");
    const err = (await herald(["token", "--sub", "p"], { DATA_DIR: missing }).catch((e: unknown) => e)) as { code: number; stderr: string; stdout: string };
    expect(err.code).toBe(1);
    expect(err.stdout).toBe("");
    expect(err.stderr.trim()).toBe(`herald: no JWT secret: set JWT_SECRET, or DATA_DIR to the server's directory (${path.join(missing, "jwt-secret")} does not exist; npm start creates it)`);
    expect(existsSync(missing)).toBe(false);
    const secret = "server-generated-secret-0123456789-0123456789";
    writeFileSync(path.join(dataDir, "jwt-secret"), `${secret}\n`);
    const token = (await herald(["token", "--sub", "provider-7"], { DATA_DIR: dataDir })).stdout.trim();
    expect(await createAuthenticator({ secret }).authenticate(token)).toMatchObject({ kind: "provider", userId: "provider-7" });
  });

  it("answers a bad --expires with examples of good ones", async () => {
    const err = (await herald(["token", "--sub", "p", "--expires", "tomorrow"], { JWT_SECRET: "cli-test-secret-0123456789-0123456789-abcdef" }).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr.trim()).toBe('herald: --expires takes a duration such as --expires 12h, --expires 30d or --expires 900 (seconds); got "tomorrow"');
  });

  it("prints secrets for several instances that npm start accepts", async () => {
    const out = (await herald(["secrets"], {})).stdout;
    const env = Object.fromEntries(out.split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    expect(Object.keys(env)).toEqual(["JWT_SECRET", "VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "HERALD_WEBHOOK_SECRET"]);
    const config = loadConfig({ DATABASE_URL: "postgres://db/herald", SMS_WEBHOOK_URL: "https://sms.example/hook", ...env });
    expect(() => requireSharedSecrets(config)).not.toThrow();
    expect((await herald(["secrets"], {})).stdout).not.toBe(out);
  });

  it("migrates, backs up and restores the database and the generated secrets into a new directory", async () => {
    const source = tempDir();
    const target = path.join(tempDir(), "new", "data");
    const file = path.join(tempDir(), "backup.tar.gz");
    expect((await herald(["migrate"], { DATA_DIR: source })).stdout).toMatch(/applied .*0001_init\.sql/);
    expect((await herald(["migrate"], { DATA_DIR: source })).stdout).toContain("up to date");
    const db = await openDatabase({ dataDir: source });
    await db.query("INSERT INTO users (id, email) VALUES ('kept-user', 'kept@example.com')");
    await db.close();
    writeFileSync(path.join(source, "jwt-secret"), "source-secret\n");
    writeFileSync(path.join(source, "vapid.json"), '{"publicKey":"p","privateKey":"k"}\n');
    expect((await herald(["backup", file], { DATA_DIR: source })).stdout.trim()).toBe(`backup written to ${file}: database, jwt-secret, vapid.json`);
    // The backup holds every row and the secrets: owner-only, whatever the umask.
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const restored = (await herald(["restore", file], { DATA_DIR: target })).stdout;
    expect(restored.trim()).toBe(`restored ${file} into ${target}: database, jwt-secret, vapid.json`);
    expect(readFileSync(path.join(target, "jwt-secret"), "utf8")).toBe("source-secret\n");
    expect(statSync(path.join(target, "vapid.json")).mode & 0o777).toBe(0o600);
    const opened = await openDatabase({ dataDir: target });
    expect(await opened.query("SELECT email FROM users WHERE id = 'kept-user'")).toEqual([{ email: "kept@example.com" }]);
    await opened.close();

    // Over existing data: what it replaces is renamed, never lost.
    writeFileSync(path.join(target, "jwt-secret"), "newer-secret\n");
    const again = (await herald(["restore", file], { DATA_DIR: target })).stdout;
    const suffix = /pgdata(\.before-restore-\S+), jwt-secret\1$/m.exec(again)?.[1];
    expect(suffix, again).toBeDefined();
    expect(readFileSync(path.join(target, `jwt-secret${suffix}`), "utf8")).toBe("newer-secret\n");
    expect(readFileSync(path.join(target, "jwt-secret"), "utf8")).toBe("source-secret\n");
    expect(readdirSync(target).sort()).toEqual(["jwt-secret", `jwt-secret${suffix}`, "pgdata", `pgdata${suffix}`, "vapid.json"]);
  }, 600_000);

  it("restores a backup written by an earlier Herald (the database alone), and refuses a file that is none", async () => {
    const source = tempDir();
    await herald(["migrate"], { DATA_DIR: source });
    const earlier = path.join(tempDir(), "earlier.tar.gz");
    const client = await PGlite.create(path.join(source, "pgdata"));
    await client.query("INSERT INTO users (id, email) VALUES ('old-user', 'old@example.com')");
    writeFileSync(earlier, Buffer.from(await (await client.dumpDataDir("gzip")).arrayBuffer()));
    await client.close();
    const target = path.join(tempDir(), "restored");
    const out = (await herald(["restore", earlier], { DATA_DIR: target })).stdout;
    expect(out).toContain(`restored ${earlier} into ${target}: database\n`);
    expect(out).toContain("the backup holds no jwt-secret");
    const opened = await openDatabase({ dataDir: target });
    expect(await opened.query("SELECT email FROM users WHERE id = 'old-user'")).toEqual([{ email: "old@example.com" }]);
    await opened.close();

    const junk = path.join(tempDir(), "junk.tar.gz");
    writeFileSync(junk, "not a backup");
    const before = readdirSync(target).sort();
    const err = (await herald(["restore", junk], { DATA_DIR: target }).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(`herald: ${junk} does not hold a database Herald can open`);
    expect(readdirSync(target).sort()).toEqual(before);
  }, 600_000);

  it("refuses an unknown command with the usage and exit code 2", async () => {
    const err = (await herald(["frobnicate"], {}).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain("usage: herald");
  });
});
