/**
 * The web UI build: `npm run build` (vite build web) writes web/dist, which
 * Herald serves at / and /analytics. herald/react and herald/client resolve to
 * the package's source, as they do in tests.
 */
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const src = (p: string) => fileURLToPath(new URL(`../src/${p}`, import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^herald\/react$/, replacement: src("react/index.ts") },
      { find: /^herald\/client$/, replacement: src("client/index.ts") },
    ],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
});
