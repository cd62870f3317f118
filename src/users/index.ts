/** The user directory (SPEC.md section 2): `upsert` and `get`. */
export { UserDirectory, timezoneCacheKey, userFieldsSchema, userIdSchema, userInputSchema } from "./directory.js";
export type { User, UserDirectoryDeps, UserInput } from "./directory.js";
