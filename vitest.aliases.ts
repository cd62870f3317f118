/** The package's self-reference ("herald", "herald/client", "herald/react") resolves to the source in every test config. */
import { fileURLToPath } from "node:url";

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export const heraldAliases = [
  { find: /^herald$/, replacement: src("index.ts") },
  { find: /^herald\/client$/, replacement: src("client/index.ts") },
  { find: /^herald\/react$/, replacement: src("react/index.ts") },
];
