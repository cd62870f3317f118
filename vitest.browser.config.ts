/**
 * Browser tests: real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) against a running Herald serving web/dist. One file at a
 * time: each drives a browser and a server on a 2-core machine.
 */
import { defineConfig } from "vitest/config";
import { heraldAliases } from "./vitest.aliases.js";

export default defineConfig({
  resolve: { alias: heraldAliases },
  test: {
    include: ["test/browser/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    teardownTimeout: 20_000,
  },
});
