import { defineConfig } from "vitest/config";
import { heraldAliases } from "./vitest.aliases.js";
import { engineIndependent } from "./vitest.engine-independent.js";

export default defineConfig({
  resolve: { alias: heraldAliases },
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    exclude: ["test/browser/**", "test/reliability/**", "node_modules/**", ...(process.env.DATABASE_URL ? engineIndependent : [])],
    pool: "forks",
    // On PGlite, one migrated image that each test database loads (test/support/pglite-image.ts).
    globalSetup: ["test/support/pglite-image.ts"],
    // Most tests wait on sockets and the database, so a few more workers than
    // the two cores keep both busy.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
  },
});
