/**
 * Secrets Herald generates into DATA_DIR when the environment gives none
 * (jwt-secret, webhook-secret, vapid.json). Several processes may start at
 * once on one DATA_DIR (PostgreSQL mode takes no directory lock), so the file
 * is written whole under a temporary name and linked into place: link() fails
 * with EEXIST when another process won, and nobody ever reads a half-written
 * or empty file. Files are 0600 in a 0700 directory.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Reads `file`, or creates it with `generate()`; `created` tells which happened. */
export function readOrCreateSecretFile(file: string, generate: () => string): { text: string; created: boolean } {
  try {
    return { text: readFileSync(file, "utf8"), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = generate();
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600, flag: "wx" });
  chmodSync(temporary, 0o600);
  try {
    linkSync(temporary, file);
    return { text, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return { text: readFileSync(file, "utf8"), created: false };
  } finally {
    unlinkSync(temporary);
  }
}
