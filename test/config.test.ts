import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/index.js";

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
      HERALD_API_KEYS: "a, b,,c",
      CORS_ORIGINS: "https://a.example,https://b.example",
      EMAIL_PORT: "465",
    });
    expect(c.apiKeys).toEqual(["a", "b", "c"]);
    expect(c.corsOrigins).toHaveLength(2);
    expect(c.email.secure).toBe(true);
  });

  it("passes only the digest timings that are set", () => {
    expect(loadConfig({}).digestTuning).toEqual({});
    expect(loadConfig({ HERALD_DIGEST_LEASE_MS: "4000", HERALD_SMTP_TIMEOUT_MS: "1500" }).digestTuning).toEqual({ leaseMs: 4000, smtpTimeoutMs: 1500 });
  });
});
