/**
 * POST /api/notifications answers 201 through its own serializer, not a
 * runtime zod pass (src/http/routes/notifications.ts): the bytes must be
 * what the route's zod response schema would have written, with and without
 * delivery warnings, and the other answers of the route keep the zod one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { notificationDtoSchema } from "../../src/http/routes/notifications.js";
import { deliveryWarningSchema } from "../../src/users/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

const created = z.object({ notification: notificationDtoSchema, warnings: z.array(deliveryWarningSchema).optional() });

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

const post = (payload: unknown) =>
  h.herald.app.inject({ method: "POST", url: "/api/notifications", headers: { "x-api-key": "test-api-key" }, payload: payload as Record<string, unknown> });

describe("the 201 of a creation", () => {
  it("is byte for byte what the zod response schema writes, warnings included", async () => {
    // Not in the directory: the default e-mail choice comes back as a warning.
    const res = await post({ userId: "ser-nobody", type: "new_message", title: "t", message: "m", data: { b: 1, a: [true, null] } });
    expect(res.statusCode).toBe(201);
    const body = res.json() as z.infer<typeof created>;
    expect(body.warnings?.length).toBeGreaterThan(0);
    expect(res.body).toBe(JSON.stringify(created.parse(body)));
    expect(Object.keys(body.notification)).toEqual(Object.keys(notificationDtoSchema.shape));
  });

  it("without warnings, and the route's 200 answers keep their shape", async () => {
    await h.herald.users.upsert({ id: "ser-known", email: "known@example.com" });
    const res = await post({ userId: "ser-known", type: "new_message", title: "t", message: "m" });
    expect(res.statusCode).toBe(201);
    expect(res.body).toBe(JSON.stringify(created.parse(res.json())));
    expect(res.json()).not.toHaveProperty("warnings");
    await h.herald.notifications.preferences.update("ser-known", { newMessageEnabled: false });
    const off = await post({ userId: "ser-known", type: "new_message", title: "t", message: "m" });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toEqual({ notification: null, reason: "type_disabled" });
  });
});
