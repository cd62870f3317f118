import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";

describe("input the database cannot store", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald();
  });
  afterAll(() => h.stop());

  const send = (method: "PUT" | "POST", url: string, body: unknown) =>
    h.herald.app.inject({ method, url, headers: { authorization: `Bearer ${h.adminToken}`, "content-type": "application/json" }, payload: JSON.stringify(body) });

  it("a NUL character in a user's name is a 400 problem and writes nothing", async () => {
    const res = await send("PUT", "/api/users/nul-user", { email: "a@example.com", name: "bad\u0000name", timezone: "UTC" });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ status: 400, code: "HERALD_VALIDATION" });
    expect(await h.database.query("SELECT 1 FROM users WHERE id = 'nul-user'")).toEqual([]);
  });

  it("a NUL character in a notification title or its data is a 400 problem and writes nothing", async () => {
    for (const body of [
      { userId: "nul-user-2", type: "new_message", title: "a\u0000b", message: "m" },
      { userId: "nul-user-2", type: "new_message", title: "t", message: "m", data: { k: "\u0000" } },
    ]) {
      const res = await send("POST", "/api/notifications", body);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: "HERALD_VALIDATION" });
    }
    expect(await h.database.query("SELECT 1 FROM notifications WHERE user_id = 'nul-user-2'")).toEqual([]);
  });
});
