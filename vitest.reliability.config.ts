/**
 * The reliability and security battery (issue 10): faults injected into real
 * processes, PostgreSQL and Redis, and bad input tried on every surface. Run
 * with `npm run test:reliability` (CI sets DATABASE_URL and REDIS_URL). Each
 * file appends its figures to a JSON-lines file; the global teardown prints
 * the one summary line.
 */
import { defineConfig } from "vitest/config";
import { heraldAliases } from "./vitest.aliases.js";

export default defineConfig({
  resolve: { alias: heraldAliases },
  test: {
    include: ["test/reliability/**/*.test.ts"],
    pool: "forks",
    // Two cores, but the long cases (SMTP down for 2 minutes, Redis down for
    // 30 s, presence TTL) mostly wait: a third file runs meanwhile.
    maxWorkers: 3,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    globalSetup: ["test/reliability/support/global-setup.ts"],
  },
});
