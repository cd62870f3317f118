/**
 * What Herald leaves in DATA_DIR is for its owner only (directories 0700,
 * files 0600, also what an older version left 0755/0644), and a start with a
 * real JWT_SECRET prints no admin token and creates no demo user.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/index.js";
import { createMailer } from "../../src/mail/index.js";
import { type HeraldProcess, freePort, spawnHerald } from "../support/process.js";

const dirs: string[] = [];
let running: HeraldProcess | undefined;
afterAll(async () => {
  // A failed assertion must not leave the server running.
  if (running && running.child.exitCode === null && running.child.signalCode === null) running.child.kill("SIGKILL");
  await running?.exited;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), "herald-modes-"));
  dirs.push(d);
  return d;
};

/** Every path under `root` (itself included) whose mode is not 0700 (directory) or 0600 (file). */
function looseModes(root: string): string[] {
  const loose: string[] = [];
  const visit = (p: string) => {
    const s = lstatSync(p);
    const mode = s.mode & 0o777;
    if (s.isDirectory()) {
      if (mode !== 0o700) loose.push(`${p} ${mode.toString(8)}`);
      for (const name of readdirSync(p)) visit(path.join(p, name));
    } else if (s.isFile() && mode !== 0o600) loose.push(`${p} ${mode.toString(8)}`);
  };
  visit(root);
  return loose;
}

describe("file modes in DATA_DIR", () => {
  it("a real start with umask 022 leaves DATA_DIR 0700/0600, tightens an older version's files, and prints no demo token with JWT_SECRET set", async () => {
    const previous = process.umask(0o022);
    const dataDir = tempDir();
    try {
      // What an older version left: world-readable directory and outbox.
      chmodSync(dataDir, 0o755);
      mkdirSync(path.join(dataDir, "outbox"), { mode: 0o755 });
      writeFileSync(path.join(dataDir, "outbox", "old.eml"), "Subject: old\n\nold", { mode: 0o644 });
      const port = await freePort();
      const secret = "a-real-deployment-secret-0123456789-abcdefgh";
      const p = spawnHerald({ WEBSOCKET_PORT: String(port), DATA_DIR: dataDir, JWT_SECRET: secret, LOG_LEVEL: "info" });
      running = p;
      await p.waitFor("herald listening", 150_000);
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
      const counted = readdirSync(path.join(dataDir, "pgdata"), { recursive: true }).length;
      expect(counted).toBeGreaterThan(100);
      expect(looseModes(dataDir)).toEqual([]);
      p.child.kill("SIGTERM");
      expect((await p.exited).code).toBe(0);
      expect(p.output()).not.toContain("Admin token");
      expect(p.output()).not.toContain("demo-provider");
      expect(looseModes(dataDir)).toEqual([]);
      const db = await openDatabase({ dataDir });
      try {
        expect(await db.query("SELECT id FROM users WHERE id = 'demo-provider'")).toEqual([]);
      } finally {
        await db.close();
      }
    } finally {
      process.umask(previous);
    }
  }, 180_000);

  it("the .eml outbox is created 0700 with 0600 files", async () => {
    const previous = process.umask(0o022);
    try {
      const outboxDir = path.join(tempDir(), "outbox");
      const mailer = createMailer({ outboxDir, from: "Herald <noreply@herald.test>" });
      await mailer.send({ to: "someone@example.com", subject: "s", html: "<p>h</p>", text: "h" });
      expect(statSync(outboxDir).mode & 0o777).toBe(0o700);
      expect(looseModes(outboxDir)).toEqual([]);
      expect(readdirSync(outboxDir)).toHaveLength(1);
    } finally {
      process.umask(previous);
    }
  });
});
