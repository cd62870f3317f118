import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  resolve: {
    // The package's self-reference ("herald", "herald/client", "herald/react") resolves to the source.
    alias: [
      { find: /^herald$/, replacement: src("index.ts") },
      { find: /^herald\/client$/, replacement: src("client/index.ts") },
      { find: /^herald\/react$/, replacement: src("react/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    exclude: ["test/browser/**", "test/reliability/**", "node_modules/**"],
    pool: "forks",
    // Most tests wait on sockets and the database, so a few more workers than
    // the two cores keep both busy.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
  },
});
