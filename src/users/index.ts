/** The user directory (the guide's library API): `upsert` and `get`. */
export { UserDirectory, timezoneCacheKey, userFieldsSchema, userIdSchema, userInputSchema } from "./directory.js";
export type { User, UserDirectoryDeps, UserInput } from "./directory.js";
