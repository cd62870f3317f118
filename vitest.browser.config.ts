/**
 * Browser tests: real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) against a running Herald serving web/dist. One file at a
 * time: each drives a browser and a server on a 2-core machine.
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
    include: ["test/browser/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    teardownTimeout: 20_000,
  },
});
