// The compiled library reads its SQL migrations next to dist/db/migrate.js.
import { cpSync } from "node:fs";
cpSync("src/db/migrations", "dist/db/migrations", { recursive: true });
