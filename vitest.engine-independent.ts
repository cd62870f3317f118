/**
 * Files whose outcome DATABASE_URL and REDIS_URL cannot change: pure logic, and
 * the embedded database, CLI and process tests that build their own PGlite or
 * `npm start` environment. The PostgreSQL + Redis run (CI's second pass) skips
 * them, since it would repeat the PGlite run's work exactly; a file here that
 * starts using the test database (test/support/database.ts, a fixtures
 * harness) must leave this list: test/meta/engine-independent.test.ts
 * fails when a listed file imports one.
 */
export const engineIndependent = [
  "test/analytics/validation.test.ts",
  "test/cache/memory-cache.test.ts",
  "test/channels/backoff.test.ts",
  "test/cli/**",
  "test/db/batch-writer.test.ts",
  "test/db/group-commit.test.ts",
  "test/db/pglite-*.test.ts",
  "test/digests/schedule.test.ts",
  "test/http-auth/token-claims.test.ts",
  "test/http/credentials-cache.test.ts",
  "test/mail/config.test.ts",
  "test/meta/**",
  "test/notifications/create-json.test.ts",
  "test/preferences/delivery-rules.test.ts",
  "test/preferences/quiet-hours.test.ts",
  "test/process/**",
  "test/realtime/asyncapi.test.ts",
  "test/realtime/frames.test.ts",
  "test/realtime/pure.test.ts",
  "test/web/inbox.test.ts",
  "test/web/serving.test.ts",
];
