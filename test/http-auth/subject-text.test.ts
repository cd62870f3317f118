/**
 * A token's subject is the user id every query is keyed by, so it must be text
 * PostgreSQL stores as it is. A lone UTF-16 surrogate is sent to PostgreSQL
 * as U+FFFD: a token for "victim\udc00" read the inbox of the user
 * "victim\ufffd" (and every other lone surrogate aliased the same user). A
 * NUL cannot be stored at all. Both are refused with 401 over REST and at the
 * WebSocket handshake.
 */
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";

let t: TestHerald;
beforeAll(async () => {
  t = await startTestHerald();
});
afterAll(async () => t?.stop());

const tokenFor = (sub: string) => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, iat: now, exp: now + 600 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(TEST_SECRET));
};

const handshake = (token: string) =>
  new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${t.wsUrl}/ws?token=${encodeURIComponent(token)}`);
    ws.on("upgrade", () => {
      ws.close();
      resolve(101);
    });
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.on("error", reject);
  });

describe("token subjects that are not storable text", () => {
  it("a lone surrogate does not alias the user whose id holds U+FFFD: 401, and the inbox stays private", async () => {
    const created = await fetch(`${t.baseUrl}/api/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ userId: "victim\ufffd", type: "new_message", title: "for the victim only", message: "m" }),
    });
    expect(created.status).toBe(201);
    // The real owner still reads it.
    const own = await fetch(`${t.baseUrl}/api/notifications`, { headers: { authorization: `Bearer ${await tokenFor("victim\ufffd")}` } });
    expect(((await own.json()) as { total: number }).total).toBe(1);

    for (const sub of ["victim\udc00", "victim\ud800", "victim\udbff"]) {
      const token = await tokenFor(sub);
      const res = await fetch(`${t.baseUrl}/api/notifications`, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.text();
      expect(res.status, JSON.stringify(sub)).toBe(401);
      expect(body).not.toContain("for the victim only");
      expect(await handshake(token), JSON.stringify(sub)).toBe(401);
    }
  });

  it("a NUL in the subject is 401 over REST and at the handshake", async () => {
    const token = await tokenFor("a\u0000b");
    expect((await fetch(`${t.baseUrl}/api/notifications`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    expect(await handshake(token)).toBe(401);
  });

  it("well-formed text beyond ASCII (a surrogate pair, U+FFFD itself) is still a subject", async () => {
    for (const sub of ["user-😀", "victim\ufffd", "ünïcødé"]) {
      const res = await fetch(`${t.baseUrl}/api/notifications/unread-count`, { headers: { authorization: `Bearer ${await tokenFor(sub)}` } });
      expect(res.status, sub).toBe(200);
    }
  });
});
