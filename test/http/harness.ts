/**
 * The HTTP app alone (buildHttpApp) over a real database, with its log lines
 * captured: for operations routes and request logging, where the rest of
 * Herald is not involved.
 */
import { Writable } from "node:stream";
import pino from "pino";
import { Registry } from "prom-client";
import { type Authenticator, createAuthenticator } from "../../src/auth/index.js";
import { loadConfig } from "../../src/config/index.js";
import type { Database } from "../../src/db/index.js";
import { buildHttpApp, type HttpServices } from "../../src/http/index.js";
import { TEST_SECRET } from "../support/herald.js";

export interface CapturedApp {
  app: Awaited<ReturnType<typeof buildHttpApp>>;
  /** Every log line written so far, parsed. */
  lines: Record<string, unknown>[];
}

export async function appWithCapturedLogs(database: Database, env: Record<string, string> = {}, auth?: Authenticator): Promise<CapturedApp> {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const config = loadConfig({ NODE_ENV: "test", JWT_SECRET: TEST_SECRET, LOG_LEVEL: "info", ...env });
  // Only what these routes use; the domain services are never reached by them.
  const services = {
    config,
    database,
    auth: auth ?? createAuthenticator({ secret: TEST_SECRET }),
    logger: pino({ level: env.LOG_LEVEL ?? "info" }, stream),
    metrics: new Registry(),
  } as unknown as HttpServices;
  const app = await buildHttpApp(services, { serveWeb: false });
  await app.ready();
  return { app, lines };
}
