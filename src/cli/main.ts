/**
 * `npx herald <command>` / `npm run herald -- <command>`:
 *   token --sub <id> [--admin] [--expires 30d]   mint a JWT with the configured or generated secret (at most HERALD_MAX_TOKEN_LIFETIME)
 *   migrate                                       apply pending migrations (also `npm run db:push`)
 *   backup <file.tar.gz>                          copy the embedded database to a file
 *   restore <file.tar.gz>                         replace the embedded database with a backup (server stopped)
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { createAuthenticator, ensureJwtSecret, mintToken } from "../auth/index.js";
import { ConfigError, loadConfig } from "../config/index.js";
import { lockDataDir, migrate, openDatabase, secureDataDir } from "../db/index.js";

const usage = `usage: herald <command>
  token --sub <userId> [--admin] [--expires 30d]
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
      const secret = config.jwtSecret ?? ensureJwtSecret(config.dataDir).secret;
      const expiresIn = values.expires ?? `${config.maxTokenLifetimeSeconds}s`;
      const token = await mintToken(secret, { sub: values.sub, role: values.admin ? "admin" : "provider", expiresIn, issuer: config.jwtIssuer, audience: config.jwtAudience });
      // The server's own check decides: a token it would refuse is not printed.
      await createAuthenticator({ secret, issuer: config.jwtIssuer, audience: config.jwtAudience, maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds })
        .authenticate(token)
        .catch(() => {
          throw new ConfigError(`--expires ${expiresIn} is longer than HERALD_MAX_TOKEN_LIFETIME (${config.maxTokenLifetimeSeconds} s)`);
        });
      process.stdout.write(`${token}\n`);
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
      await withDataDir(config.dataDir, async (dir) => {
        const client = await PGlite.create(path.join(dir, "pgdata"));
        try {
          const dump = await client.dumpDataDir("gzip");
          // Every row of the database: owner-only, whatever the umask (chmod too, for a file that existed).
          writeFileSync(file, Buffer.from(await dump.arrayBuffer()), { mode: 0o600 });
          chmodSync(file, 0o600);
        } finally {
          await client.close();
        }
      });
      process.stdout.write(`backup written to ${file}\n`);
      return 0;
    }
    case "restore": {
      const file = rest[0];
      if (!file || !existsSync(file)) throw new ConfigError("restore needs an existing backup file");
      if (config.databaseUrl) throw new ConfigError("restore replaces the embedded database; for PostgreSQL use pg_restore");
      const target = await withDataDir(config.dataDir, async (dir) => {
        const pgdata = path.join(dir, "pgdata");
        if (existsSync(pgdata)) renameSync(pgdata, `${pgdata}.before-restore-${Date.now()}`);
        const client = await PGlite.create(pgdata, { loadDataDir: new Blob([readFileSync(file)]) });
        try {
          await client.query("SELECT 1");
        } finally {
          await client.close();
        }
        secureDataDir(dir);
        return pgdata;
      });
      process.stdout.write(`restored ${file} into ${target} (previous data kept beside it)\n`);
      return 0;
    }
    default:
      process.stderr.write(`${usage}\n`);
      return command ? 2 : 0;
  }
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
