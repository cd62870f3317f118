/**
 * `npm start`: one process serving REST, WebSocket, the web UI and the jobs.
 * Prints the URL, and demo tokens on the pure-defaults path (a secret
 * generated into DATA_DIR) or when HERALD_DEMO_TOKENS=true; never in production.
 */
import { mintToken } from "./auth/index.js";
import { type Config, ConfigError, loadConfig, requireSharedSecrets } from "./config/index.js";
import { secureDataDir } from "./db/index.js";
import { createHerald } from "./herald.js";
import { ensureWebBuild } from "./http/index.js";
import { type Logger, isReaderGone } from "./observability/index.js";
import { StopRequests } from "./stop-requests.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
    requireSharedSecrets(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`herald: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  // A dead PGlite worker is not restarted: exit (code 1) so a supervisor starts a working process.
  // Until the server listens there is nothing to stop gracefully, so a loss that early exits at once;
  // `shutdown` becomes the graceful stop below.
  let shutdown: (reason: string, code?: number) => void = () => process.exit(1);
  const herald = await createHerald({ config, onDatabaseLost: () => shutdown("database lost", 1) });
  // Owner-only, also what an older version (or the PostgreSQL mode, which takes no lock) left readable.
  secureDataDir(config.dataDir);
  const log = herald.runtime.logger;
  // A fresh checkout has no web/dist: build the UI once (a few seconds) before serving it.
  await ensureWebBuild({ info: (m) => log.info(m), warn: (m) => log.warn(m) });
  const url = await herald.listen();
  log.info({ url, database: herald.runtime.database.kind, bus: herald.runtime.bus.kind }, "herald listening");
  // Handlers as soon as requests can arrive: from here a signal takes the graceful stop.
  const requests = new StopRequests();
  // After a hang-up the process ends by that signal, whichever reason began the stop.
  const exitOrHangUp = (exitCode: number) => (requests.hungUp ? dieByHangUp(log) : process.exit(exitCode));
  shutdown = (reason: string, code = 0) => {
    const decision = requests.take(reason);
    if (decision === "ignore") return;
    if (decision === "force") {
      log.warn({ reason }, "asked again while shutting down; exiting now");
      exitOrHangUp(1);
      return;
    }
    log.info({ reason }, "shutting down");
    const force = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      exitOrHangUp(1);
    }, 10_000);
    force.unref();
    herald.stop().then(
      () => exitOrHangUp(code),
      (err) => {
        log.error({ err }, "shutdown failed");
        exitOrHangUp(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // Its terminal closed (or a supervisor's hang-up): the same graceful stop.
  process.on("SIGHUP", () => shutdown("SIGHUP"));

  // The "running at" line always prints (scripts and tests wait for it); tokens only on the demo path.
  const publicUrl = config.appUrl;
  const lines = ["", `Herald is running at ${publicUrl}`];
  const tryCurl = (token: string, userId: string) =>
    `  Try: curl -X POST ${publicUrl}/api/notifications -H "authorization: Bearer ${token}" -H "content-type: application/json" -d '{"userId":"${userId}","type":"new_message","title":"Hello","message":"First notification"}'`;
  if (config.demoTokens && herald.runtime.jwtSecret) {
    const secret = herald.runtime.jwtSecret;
    const provider = await mintToken(secret, { sub: "demo-provider", expiresIn: "30d" });
    const admin = await mintToken(secret, { sub: "demo-admin", role: "admin", expiresIn: "30d" });
    await herald.users.upsert({ id: "demo-provider", email: "demo-provider@example.com", name: "Demo Provider", timezone: "UTC", locale: "en" });
    lines.push(
      `  Notification center: ${publicUrl}/#token=${provider}`,
      `  Analytics dashboard: ${publicUrl}/analytics#token=${admin}`,
      `  Demo provider token (sub=demo-provider): ${provider}`,
      `  Admin token: ${admin}`,
      tryCurl(admin, "demo-provider"),
    );
  } else {
    // No token is printed outside the demo path: the line still pastes as is once the variable holds one.
    lines.push(
      herald.runtime.jwtSecret
        ? "  First mint an admin token (same environment as this server): export HERALD_ADMIN_TOKEN=$(npm run --silent herald -- token --sub ops --admin)"
        : "  First set HERALD_ADMIN_TOKEN to an admin token from your identity provider (JWT_ADMIN_CLAIM) or to one of HERALD_API_KEYS",
      tryCurl("$HERALD_ADMIN_TOKEN", "provider-123"),
    );
  }

  // A closed pipe (`npm start | head`) or hung-up terminal must not crash a running server over its banner.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (!isReaderGone(err)) throw err;
  });
  process.stdout.write([...lines, ""].join("\n"));
}

/**
 * Ends the process by SIGHUP itself, as it would have without a handler, once the graceful stop is done.
 * Not process.exit: on a hung-up terminal Node's exit path fails restoring the terminal's mode (an
 * assertion in node::ResetStdio, then SIGSEGV), where death by the signal skips it. Death by the signal
 * also skips pino's flush at exit, so the log is flushed first (a lost terminal's writes fail at once;
 * a file's or pipe's last lines would be lost), for at most a second.
 */
function dieByHangUp(log: Logger): void {
  const die = () => {
    process.removeAllListeners("SIGHUP");
    process.kill(process.pid, "SIGHUP");
  };
  setTimeout(die, 1_000);
  log.flush(die);
}

main().catch((err) => {
  process.stderr.write(`herald: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
