import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseDurationSeconds, requireSharedSecrets } from "../../src/config/index.js";

describe("configuration", () => {
  it("starts on embedded defaults with no environment", () => {
    const c = loadConfig({});
    expect(c.port).toBe(3001);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataDir).toBe("./data");
    expect(c.websocketUrl).toBe("ws://localhost:3001");
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ WEBSOCKET_PORT: "abc" }, /^Invalid environment variable WEBSOCKET_PORT: must be a number \(got "abc"\)$/],
    [{ WEBSOCKET_PORT: "70000" }, /WEBSOCKET_PORT: must be between 1 and 65535/],
    [{ DATABASE_URL: "not a url" }, /^Invalid environment variable DATABASE_URL: must be a URL starting with postgres:\/\//],
    [{ DATABASE_URL: "mysql://x@y/z" }, /DATABASE_URL/],
    [{ REDIS_URL: "http://x" }, /REDIS_URL/],
    [{ LOG_LEVEL: "loud" }, /^Invalid environment variable LOG_LEVEL: must be one of/],
    [{ JWT_SECRET: "short" }, /JWT_SECRET: must be at least 32 characters/],
    [{ NODE_ENV: "production" }, /^Invalid environment variable JWT_SECRET: required when NODE_ENV=production$/],
    [{ VAPID_PUBLIC_KEY: "abc" }, /VAPID/],
    [{ HERALD_DIGEST_LEASE_MS: "0" }, /^Invalid environment variable HERALD_DIGEST_LEASE_MS: must be a positive integer \(got "0"\)$/],
    [{ HERALD_SMTP_TIMEOUT_MS: "1.5" }, /HERALD_SMTP_TIMEOUT_MS: must be a positive integer/],
    [{ NODE_ENV: "production", JWT_SECRET: "x".repeat(32), HERALD_API_KEYS: "a" }, /^Invalid environment variable HERALD_API_KEYS: each key must be at least 32 characters when NODE_ENV=production$/],
    [{ NODE_ENV: "production", JWKS_URL: "https://idp.example/jwks.json" }, /^Invalid environment variable JWT_AUDIENCE: JWT_AUDIENCE and JWT_ISSUER are required with JWKS_URL when NODE_ENV=production$/],
    [{ NODE_ENV: "production", JWKS_URL: "https://idp.example/jwks.json", JWT_AUDIENCE: "herald" }, /JWT_ISSUER/],
    // Each instance would derive the unsubscribe key from its own DATA_DIR: links minted by one fail on another.
    [{ NODE_ENV: "production", JWKS_URL: "https://idp.example/jwks.json", JWT_AUDIENCE: "herald", JWT_ISSUER: "https://idp.example" }, /^Invalid environment variable HERALD_UNSUBSCRIBE_SECRET: required when NODE_ENV=production and JWT_SECRET is not set$/],
    [{ NODE_ENV: "production", JWT_SECRET: "x".repeat(32), HERALD_DEMO_TOKENS: "true" }, /^Invalid environment variable HERALD_DEMO_TOKENS: not allowed when NODE_ENV=production/],
    [{ HERALD_MAX_TOKEN_LIFETIME: "forever" }, /HERALD_MAX_TOKEN_LIFETIME: must be a duration/],
    [{ JWT_ADMIN_CLAIM: "role" }, /JWT_ADMIN_CLAIM: must be claim=value/],
  ])("refuses %j with one line naming the variable", (env, message) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("accepts production with a secret and parses lists", () => {
    const c = loadConfig({
      NODE_ENV: "production",
      JWT_SECRET: "x".repeat(32),
      HERALD_API_KEYS: `${"a".repeat(32)}, ${"b".repeat(32)},,${"c".repeat(32)}`,
      CORS_ORIGINS: "https://a.example,https://b.example",
      EMAIL_PORT: "465",
    });
    expect(c.apiKeys).toEqual(["a".repeat(32), "b".repeat(32), "c".repeat(32)]);
    expect(c.corsOrigins).toHaveLength(2);
    expect(c.email.secure).toBe(true);
  });

  it("keeps long production API keys, and shows no key in the error about a short one", () => {
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32), HERALD_API_KEYS: "k".repeat(32) }).apiKeys).toEqual(["k".repeat(32)]);
    expect(loadConfig({ HERALD_API_KEYS: "a" }).apiKeys).toEqual(["a"]);
    expect(() => loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32), HERALD_API_KEYS: `${"k".repeat(32)},tiny-secret` })).toThrow(/^(?!.*tiny-secret)/);
  });

  it("accepts JWKS in production with an audience, an issuer and an unsubscribe secret", () => {
    const c = loadConfig({ NODE_ENV: "production", JWKS_URL: "https://idp.example/jwks.json", JWT_AUDIENCE: "herald", JWT_ISSUER: "https://idp.example", HERALD_UNSUBSCRIBE_SECRET: "u".repeat(32) });
    expect(c.jwtAudience).toBe("herald");
    expect(c.unsubscribeSecret).toBe("u".repeat(32));
    // With JWT_SECRET the unsubscribe key is derived from it, the same on every instance.
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32), JWKS_URL: "https://idp.example/jwks.json", JWT_AUDIENCE: "herald", JWT_ISSUER: "https://idp.example" }).unsubscribeSecret).toBeUndefined();
  });

  it("parses the admin claim (claim names may be URLs)", () => {
    expect(loadConfig({}).jwtAdminClaim).toBeUndefined();
    expect(loadConfig({ JWT_ADMIN_CLAIM: "role=admin" }).jwtAdminClaim).toEqual({ claim: "role", value: "admin" });
    expect(loadConfig({ JWT_ADMIN_CLAIM: "https://example.com/roles=herald-admin" }).jwtAdminClaim).toEqual({ claim: "https://example.com/roles", value: "herald-admin" });
  });

  it("bounds token lifetime to 30 days unless told otherwise", () => {
    expect(loadConfig({}).maxTokenLifetimeSeconds).toBe(30 * 86400);
    expect(loadConfig({ HERALD_MAX_TOKEN_LIFETIME: "12h" }).maxTokenLifetimeSeconds).toBe(12 * 3600);
    expect(loadConfig({ HERALD_MAX_TOKEN_LIFETIME: "900" }).maxTokenLifetimeSeconds).toBe(900);
  });

  it("prints demo tokens only on the pure-defaults path or when asked", () => {
    expect(loadConfig({}).demoTokens).toBe(true);
    expect(loadConfig({ JWT_SECRET: "x".repeat(32) }).demoTokens).toBe(false);
    expect(loadConfig({ JWKS_URL: "https://idp.example/jwks.json" }).demoTokens).toBe(false);
    expect(loadConfig({ JWT_SECRET: "x".repeat(32), HERALD_DEMO_TOKENS: "true" }).demoTokens).toBe(true);
    expect(loadConfig({ HERALD_DEMO_TOKENS: "false" }).demoTokens).toBe(false);
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32) }).demoTokens).toBe(false);
  });

  it("passes only the digest timings that are set", () => {
    expect(loadConfig({}).digestTuning).toEqual({});
    expect(loadConfig({ HERALD_DIGEST_LEASE_MS: "4000", HERALD_SMTP_TIMEOUT_MS: "1500" }).digestTuning).toEqual({ leaseMs: 4000, smtpTimeoutMs: 1500 });
  });

  it("reads durations as --expires and HERALD_MAX_TOKEN_LIFETIME write them, and nothing else", () => {
    expect([parseDurationSeconds("12h"), parseDurationSeconds("30d"), parseDurationSeconds("900"), parseDurationSeconds("15m")]).toEqual([43_200, 2_592_000, 900, 900]);
    expect([parseDurationSeconds("abc"), parseDurationSeconds("0"), parseDurationSeconds("-5"), parseDurationSeconds("1w")]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe("secrets shared by several instances (npm start with DATABASE_URL or REDIS_URL)", () => {
  const secret = "s".repeat(32);
  const vapid = { VAPID_PUBLIC_KEY: "public-key", VAPID_PRIVATE_KEY: "private-key" };
  const refusal = (env: Record<string, string>) => {
    try {
      requireSharedSecrets(loadConfig(env));
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    return undefined;
  };

  it("asks nothing of one instance on embedded defaults (npm start with no environment)", () => {
    expect(refusal({})).toBeUndefined();
    expect(refusal({ DATA_DIR: "/var/lib/herald" })).toBeUndefined();
  });

  it.each([
    [{ DATABASE_URL: "postgres://db/herald" }, "database", "JWT_SECRET so a token from one instance is accepted by the others"],
    [{ REDIS_URL: "redis://cache" }, "Redis", "JWT_SECRET so a token from one instance is accepted by the others"],
    [{ DATABASE_URL: "postgres://db/herald", JWT_SECRET: secret }, "database", "VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY so a browser subscribed through one instance"],
    [{ DATABASE_URL: "postgres://db/herald", JWKS_URL: "https://idp.example/jwks.json", ...vapid }, "database", "HERALD_UNSUBSCRIBE_SECRET so an unsubscribe link"],
    [{ DATABASE_URL: "postgres://db/herald", JWT_SECRET: secret, ...vapid, SMS_WEBHOOK_URL: "https://sms.example/hook" }, "database", "HERALD_WEBHOOK_SECRET so every instance signs webhooks"],
  ])("refuses %j with one line saying why", (env, shared, what) => {
    const message = refusal(env)!;
    expect(message).toContain(`several instances share this ${shared}: set ${what}`);
    expect(message).toContain("npm run herald -- secrets");
    expect(message).not.toContain("\n");
  });

  it("accepts instances given the shared secrets (JWKS as the only auth needs no JWT_SECRET)", () => {
    expect(refusal({ DATABASE_URL: "postgres://db/herald", REDIS_URL: "redis://cache", JWT_SECRET: secret, ...vapid })).toBeUndefined();
    expect(refusal({ DATABASE_URL: "postgres://db/herald", JWKS_URL: "https://idp.example/jwks.json", HERALD_UNSUBSCRIBE_SECRET: "u".repeat(32), ...vapid })).toBeUndefined();
  });
});
