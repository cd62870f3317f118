/**
 * The verified-token cache of createCredentials (src/http/auth.ts, on
 * lru-cache): a token is verified once and reused until its expiry, an API
 * key until the cache lets it go; failures are never kept.
 */
import type { FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import type { Authenticator, Principal } from "../../src/auth/index.js";
import { createCredentials } from "../../src/http/auth.js";

const T0 = 1_700_000_000_000;

function setup() {
  const clock = { t: T0 };
  const calls: (string | undefined)[] = [];
  const auth: Authenticator = {
    async authenticate(token) {
      calls.push(token);
      if (token === "key") return { kind: "admin", subject: "api-key", expiresAt: undefined } satisfies Principal;
      if (token === "user") return { kind: "provider", userId: "u1", expiresAt: T0 + 60_000 } satisfies Principal;
      throw new Error("bad token");
    },
  };
  const credentials = createCredentials(auth, () => clock.t);
  // A fresh request each time: the per-request memo must not answer for the cache.
  const verify = (token: string) => credentials.verify({ headers: { authorization: `Bearer ${token}` } } as unknown as FastifyRequest);
  return { clock, calls, verify };
}

describe("createCredentials' verified tokens", () => {
  it("verifies a token once and reuses it until the instant it expires", async () => {
    const { clock, calls, verify } = setup();
    await verify("user");
    clock.t = T0 + 59_999;
    expect(await verify("user")).toMatchObject({ userId: "u1" });
    expect(calls).toEqual(["user"]);
    clock.t = T0 + 60_000;
    await verify("user");
    expect(calls).toEqual(["user", "user"]);
  });

  it("keeps an API key (no expiry) and never keeps a failure", async () => {
    const { clock, calls, verify } = setup();
    await verify("key");
    clock.t += 365 * 86_400_000;
    await verify("key");
    await expect(verify("nope")).rejects.toThrow("bad token");
    await expect(verify("nope")).rejects.toThrow("bad token");
    expect(calls).toEqual(["key", "nope", "nope"]);
  });
});
