// When Herald is installed as a dependency (from git or a tarball without
// dist/), compile the library so `import ... from "herald"` works on plain
// Node. In a development checkout (tsx, vitest) the source is used directly.
import { existsSync } from "node:fs";
import { execSync } from "node:child_process";
if (!existsSync("dist/index.js") && !existsSync(".git")) {
  execSync("npx tsc -p tsconfig.build.json && node scripts/copy-migrations.mjs", { stdio: "inherit" });
}
