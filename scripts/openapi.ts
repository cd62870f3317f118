/**
 * The OpenAPI document of the HTTP app, built as the server builds it, with
 * only what building reads (no database is opened, no port listened on).
 *
 *   node --conditions=herald-source --import tsx scripts/openapi.ts out.json   writes it
 *   node --conditions=herald-source --import tsx scripts/openapi.ts --lint     lints it with Redocly (npm run lint:openapi)
 *
 * APP_URL, if set, is the document's server, as in a running Herald.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { Registry } from "prom-client";
import { createAuthenticator } from "../src/auth/index.js";
import { loadConfig } from "../src/config/index.js";
import { buildHttpApp, type HttpServices } from "../src/http/index.js";

async function writeDocument(file: string): Promise<void> {
  // A throwaway secret: the document does not depend on it, and nothing is signed.
  const secret = "openapi-document-only-".padEnd(48, "x");
  const env = { NODE_ENV: "test", JWT_SECRET: secret, LOG_LEVEL: "silent", ...(process.env.APP_URL ? { APP_URL: process.env.APP_URL } : {}) };
  const config = loadConfig(env);
  // Building registers routes and plugins; the services behind them are reached only by requests.
  const services = { config, auth: createAuthenticator({ secret }), logger: pino({ level: "silent" }), metrics: new Registry() } as unknown as HttpServices;
  const app = await buildHttpApp(services, { serveWeb: false });
  await app.ready();
  writeFileSync(file, `${JSON.stringify(app.swagger(), null, 2)}\n`);
  await app.close();
}

const target = process.argv[2];
if (target === undefined) {
  console.error("usage: scripts/openapi.ts <output.json> | --lint");
  process.exit(2);
} else if (target === "--lint") {
  const dir = mkdtempSync(path.join(tmpdir(), "herald-openapi-"));
  try {
    const file = path.join(dir, "openapi.json");
    await writeDocument(file);
    // Redocly's recommended rules; redocly.yaml (repository root) says which are changed and why.
    const cli = createRequire(import.meta.url).resolve("@redocly/cli/bin/cli.js");
    const lint = spawnSync(process.execPath, [cli, "lint", file], { stdio: "inherit" });
    process.exitCode = lint.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  await writeDocument(target);
}
