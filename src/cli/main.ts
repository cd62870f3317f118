/**
 * `npx herald <command>` / `npm run herald -- <command>`:
 *   token --sub <id> [--admin] [--expires 30d]   mint a JWT with JWT_SECRET or the server's DATA_DIR/jwt-secret (at most HERALD_MAX_TOKEN_LIFETIME)
 *   secrets                                       print new JWT_SECRET, VAPID and webhook keys for instances that share a database
 *   migrate                                       apply pending migrations (also `npm run db:push`)
 *   backup <file.tar.gz>                          copy the embedded database and DATA_DIR's secrets to a file
 *   restore <file.tar.gz>                         put a backup into DATA_DIR (server stopped; what it replaces is kept beside it)
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import webpush from "web-push";
import { createAuthenticator, mintToken } from "../auth/index.js";
import { type Config, ConfigError, loadConfig, parseDurationSeconds } from "../config/index.js";
import { lockDataDir, migrate, openDatabase } from "../db/index.js";
import { restoreBackup, writeBackup } from "./backup.js";

const usage = `usage: herald <command>
  token --sub <userId> [--admin] [--expires 30d]
  secrets
  migrate
  backup <file.tar.gz>
  restore <file.tar.gz>`;

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case "token": {
      const { values } = parseArgs({
        args: rest,
        options: { sub: { type: "string" }, admin: { type: "boolean" }, expires: { type: "string" } },
      });
      if (!values.sub) throw new ConfigError("token needs --sub <userId>");
      const secret = serverSecret(config);
      const expires = values.expires ?? `${config.maxTokenLifetimeSeconds}`;
      const seconds = parseDurationSeconds(expires);
      if (seconds === undefined) throw new ConfigError(`--expires takes a duration such as --expires 12h, --expires 30d or --expires 900 (seconds); got ${JSON.stringify(expires)}`);
      const token = await mintToken(secret, { sub: values.sub, role: values.admin ? "admin" : "provider", expiresIn: seconds, issuer: config.jwtIssuer, audience: config.jwtAudience });
      // The server's own check decides: a token it would refuse is not printed.
      await createAuthenticator({ secret, issuer: config.jwtIssuer, audience: config.jwtAudience, maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds })
        .authenticate(token)
        .catch(() => {
          throw new ConfigError(`--expires ${expires} is longer than HERALD_MAX_TOKEN_LIFETIME (${config.maxTokenLifetimeSeconds} s)`);
        });
      process.stdout.write(`${token}\n`);
      return 0;
    }
    case "secrets": {
      const vapid = webpush.generateVAPIDKeys();
      process.stdout.write(
        [
          "# Give every instance that shares the database these same values (keep them secret).",
          `JWT_SECRET=${randomBytes(48).toString("base64url")}`,
          `VAPID_PUBLIC_KEY=${vapid.publicKey}`,
          `VAPID_PRIVATE_KEY=${vapid.privateKey}`,
          `HERALD_WEBHOOK_SECRET=whsec_${randomBytes(32).toString("base64")}`,
          "",
        ].join("\n"),
      );
      return 0;
    }
    case "migrate": {
      const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
      try {
        const applied = await migrate(database);
        process.stdout.write(applied.length ? `applied ${applied.join(", ")}\n` : "database is up to date\n");
      } finally {
        await database.close();
      }
      return 0;
    }
    case "backup": {
      const file = rest[0];
      if (!file) throw new ConfigError("backup needs a file name");
      if (config.databaseUrl) throw new ConfigError("backup copies the embedded database; for PostgreSQL use pg_dump");
      const held = await withDataDir(config.dataDir, (dir) => writeBackup(dir, file));
      process.stdout.write(`backup written to ${file}: ${held.join(", ")}\n`);
      return 0;
    }
    case "restore": {
      const file = rest[0];
      if (!file || !existsSync(file)) throw new ConfigError("restore needs an existing backup file");
      if (config.databaseUrl) throw new ConfigError("restore replaces the embedded database; for PostgreSQL use pg_restore");
      let into = "";
      const result = await withDataDir(config.dataDir, (dir) => {
        into = dir;
        return restoreBackup(dir, file);
      });
      const lines = [`restored ${file} into ${into}: ${result.restored.join(", ")}`];
      if (result.keptAside.length > 0) lines.push(`what it replaced is kept beside it: ${result.keptAside.map((n) => `${n}${result.suffix}`).join(", ")}`);
      if (!result.restored.includes("jwt-secret") && !config.jwtSecret) {
        lines.push("the backup holds no jwt-secret: earlier tokens are accepted only with the JWT_SECRET the backed-up server used");
      }
      process.stdout.write(`${lines.join("\n")}\n`);
      return 0;
    }
    default:
      process.stderr.write(`${usage}\n`);
      return command ? 2 : 0;
  }
}

/**
 * The HS256 secret the server uses: JWT_SECRET, else the one it generated
 * into DATA_DIR (same default, ./data, as npm start). Never generates one: a
 * token signed with a secret no server has would be refused.
 */
function serverSecret(config: Config): string {
  if (config.jwtSecret) return config.jwtSecret;
  if (config.jwksUrl) throw new ConfigError("herald token signs with JWT_SECRET, which is not set (JWKS_URL tokens come from your identity provider)");
  const file = path.resolve(config.dataDir, "jwt-secret");
  if (!existsSync(file)) {
    throw new ConfigError(`no JWT secret: set JWT_SECRET, or DATA_DIR to the server's directory (${file} does not exist; npm start creates it)`);
  }
  return readFileSync(file, "utf8").trim();
}

/** Runs `fn` holding DATA_DIR (refused while a server or another command has it). */
async function withDataDir<T>(dataDir: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const lock = await lockDataDir(dataDir);
  try {
    return await fn(lock.dir);
  } finally {
    await lock.release();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`herald: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
