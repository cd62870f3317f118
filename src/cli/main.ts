/**
 * `npx herald <command>` / `npm run herald -- <command>`:
 *   token --sub <id> [--admin] [--expires 30d]   mint a JWT with the configured or generated secret
 *   migrate                                       apply pending migrations (also `npm run db:push`)
 *   backup <file.tar.gz>                          copy the embedded database to a file
 *   restore <file.tar.gz>                         replace the embedded database with a backup (server stopped)
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { ensureJwtSecret, mintToken } from "../auth/index.js";
import { ConfigError, loadConfig } from "../config/index.js";
import { migrate, openDatabase } from "../db/index.js";

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
      process.stdout.write(
        `${await mintToken(secret, { sub: values.sub, role: values.admin ? "admin" : "provider", expiresIn: values.expires ?? "30d", issuer: config.jwtIssuer, audience: config.jwtAudience })}\n`,
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
      const client = await PGlite.create(path.resolve(config.dataDir, "pgdata"));
      const dump = await client.dumpDataDir("gzip");
      writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
      await client.close();
      process.stdout.write(`backup written to ${file}\n`);
      return 0;
    }
    case "restore": {
      const file = rest[0];
      if (!file || !existsSync(file)) throw new ConfigError("restore needs an existing backup file");
      if (config.databaseUrl) throw new ConfigError("restore replaces the embedded database; for PostgreSQL use pg_restore");
      const target = path.resolve(config.dataDir, "pgdata");
      if (existsSync(target)) renameSync(target, `${target}.before-restore-${Date.now()}`);
      const client = await PGlite.create(target, { loadDataDir: new Blob([readFileSync(file)]) });
      await client.query("SELECT 1");
      await client.close();
      process.stdout.write(`restored ${file} into ${target} (previous data kept beside it)\n`);
      return 0;
    }
    default:
      process.stderr.write(`${usage}\n`);
      return command ? 2 : 0;
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`herald: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
