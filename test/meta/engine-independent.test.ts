/**
 * The PostgreSQL + Redis pass skips the files of vitest.engine-independent.ts.
 * A listed file that reaches the test database or reads DATABASE_URL/REDIS_URL
 * would then never run against PostgreSQL or Redis: this fails first. (Direct
 * imports only: a helper of its own that opens the test database would slip by.)
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { engineIndependent } from "../../vitest.engine-independent.js";

const root = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "../..");
const testFiles = (readdirSync(path.join(root, "test"), { recursive: true }) as string[]).map((f) => `test/${f.split(path.sep).join("/")}`).filter((f) => f.endsWith(".test.ts"));
/** The two glob forms the list uses: `**` (any path) and `*` (within one segment). */
const literal = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
const matcher = (glob: string) => new RegExp(`^${glob.split("**").map((part) => part.split("*").map(literal).join("[^/]*")).join(".*")}$`);
const ENGINE_DEPENDENT = /support\/database|support\/herald|\/fixtures\.js|usingPostgres|usingRedis|process\.env\.(DATABASE_URL|REDIS_URL)|\.\.\.process\.env\b/;

describe("the engine-independent test files (skipped on PostgreSQL + Redis)", () => {
  it.each(engineIndependent)("%s names files that exist", (glob) => {
    expect(testFiles.filter((f) => matcher(glob).test(f)).length).toBeGreaterThan(0);
  });

  it("none of them reaches the test database or reads DATABASE_URL / REDIS_URL", () => {
    // This file names the patterns it looks for.
    const listed = testFiles.filter((f) => f !== "test/meta/engine-independent.test.ts" && engineIndependent.some((g) => matcher(g).test(f)));
    const offending = listed.filter((f) => ENGINE_DEPENDENT.test(readFileSync(path.join(root, f), "utf8")));
    expect(offending).toEqual([]);
  });
});
