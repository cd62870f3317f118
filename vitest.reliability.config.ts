/**
 * The reliability and security battery (issue 10): faults injected into real
 * processes, PostgreSQL and Redis, and bad input tried on every surface. Run
 * with `npm run test:reliability` (CI sets DATABASE_URL and REDIS_URL). Each
 * file appends its figures to a JSON-lines file; the global teardown prints
 * the one summary line.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^herald$/, replacement: src("index.ts") },
      { find: /^herald\/client$/, replacement: src("client/index.ts") },
      { find: /^herald\/react$/, replacement: src("react/index.ts") },
    ],
  },
  test: {
    include: ["test/reliability/**/*.test.ts"],
    pool: "forks",
    // Two cores: child processes and private servers need the other one.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    globalSetup: ["test/reliability/support/global-setup.ts"],
  },
});
