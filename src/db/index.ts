export { openDatabase, quoteIdent } from "./database.js";
export type { Database, HeraldDb, OpenDatabaseOptions, Queryable } from "./database.js";
export { migrate, listMigrations } from "./migrate.js";
export { GroupCommit } from "./group-commit.js";
export type { GroupCommitOptions } from "./group-commit.js";
export { isRefusedData, writeIsolating } from "./isolate.js";
export * as schema from "./schema.js";
export type * from "./schema.js";
