/**
 * docs/auth.md's promises about tokens, checked against a running Herald: a
 * token minted with jose as the document shows is accepted as that user,
 * `exp` and `iat` are both required, `role: admin` makes an admin token.
 */
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, expectProblem } from "../notifications/api.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";

describe("docs/auth.md: minting tokens from a backend", () => {
  let h: TestHerald;
  let call: ReturnType<typeof api>;
  const secret = new TextEncoder().encode(TEST_SECRET);

  beforeAll(async () => {
    h = await startTestHerald();
    call = api(h);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("the document's provider token is accepted as its `sub`", async () => {
    // As in docs/auth.md.
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject("doc-user").setIssuedAt().setExpirationTime("1h").sign(secret);
    const res = await call<{ userId: string }>("GET", "/api/preferences", { token });
    expect(res.status).toBe(200);
    expect(res.body.userId).toBe("doc-user");
    // A provider token is not an admin credential.
    expect((await call("GET", "/api/users", { token })).status).toBe(403);
  });

  it("the document's admin token lists users", async () => {
    const admin = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject("my-backend").setIssuedAt().setExpirationTime("15m").sign(secret);
    expect((await call("GET", "/api/users", { token: admin })).status).toBe(200);
  });

  it("a token without iat, without exp, or living longer than HERALD_MAX_TOKEN_LIFETIME is refused", async () => {
    const noIat = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("doc-user").setExpirationTime("1h").sign(secret);
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("doc-user").setIssuedAt().sign(secret);
    const tooLong = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("doc-user").setIssuedAt().setExpirationTime("31d").sign(secret);
    for (const token of [noIat, noExp, tooLong]) expectProblem(await call("GET", "/api/preferences", { token }), 401, "HERALD_UNAUTHENTICATED");
  });
});
