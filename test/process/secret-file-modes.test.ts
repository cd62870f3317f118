/**
 * The secrets Herald generates into DATA_DIR create the directory owner-only
 * (0700) whatever the umask, not only the files in it: with PostgreSQL no
 * lock opens DATA_DIR first, so an embedded createHerald (no `npm start` to
 * tighten it afterwards) left DATA_DIR 0755 with umask 022.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureJwtSecret } from "../../src/auth/index.js";
import { loadVapidKeys } from "../../src/channels/index.js";
import { loadWebhookSecret } from "../../src/channels/webhook-signing.js";
import { loadConfig } from "../../src/config/index.js";

const root = mkdtempSync(path.join(tmpdir(), "herald-secret-modes-"));
const previous = process.umask(0o022);
afterAll(() => {
  process.umask(previous);
  rmSync(root, { recursive: true, force: true });
});

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe("secrets generated into a DATA_DIR that does not exist yet (umask 022)", () => {
  it.each([
    ["jwt-secret", (dir: string) => void ensureJwtSecret(dir)],
    ["vapid.json", (dir: string) => void loadVapidKeys(loadConfig({ NODE_ENV: "test", DATA_DIR: dir }))],
    ["webhook-secret", (dir: string) => void loadWebhookSecret({ dataDir: dir, webhookSecret: undefined })],
  ])("%s: the directories it creates are 0700 and the file 0600", (file, create) => {
    const dir = path.join(root, file, "nested", "data");
    create(dir);
    expect(mode(path.join(root, file, "nested"))).toBe("700");
    expect(mode(dir)).toBe("700");
    expect(mode(path.join(dir, file))).toBe("600");
  });
});
