/**
 * Deliverability (#19.6): which channels can reach a user (a pure decision
 * over the directory entry and push subscriptions), the warnings a created
 * notification carries for channels its delivery rules chose that cannot
 * work (stored anyway), and the per-channel answer of the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Recipient, deliverabilityOf, deliveryWarnings } from "../../src/users/index.js";
import { api } from "../notifications/api.js";
import type { NotificationDto } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

const complete: Recipient = { inDirectory: true, hasEmail: true, hasPhone: true, pushSubscriptions: 2 };

describe("deliverabilityOf / deliveryWarnings", () => {
  it.each([
    ["a complete entry", complete, { email: null, push: null, sms: null }],
    ["no directory entry", { inDirectory: false, hasEmail: false, hasPhone: false, pushSubscriptions: 1 }, { email: "user_not_in_directory", push: null, sms: "user_not_in_directory" }],
    ["no e-mail address", { ...complete, hasEmail: false }, { email: "no_email_address", push: null, sms: null }],
    ["no phone", { ...complete, hasPhone: false }, { email: null, push: null, sms: "no_phone_number" }],
    ["no push subscription", { ...complete, pushSubscriptions: 0 }, { email: null, push: "no_push_subscription", sms: null }],
  ] as const)("%s", (_name, recipient, reasons) => {
    const d = deliverabilityOf(recipient);
    expect(d.in_app).toEqual({ deliverable: true, reason: null });
    for (const channel of ["email", "push", "sms"] as const) {
      expect(d[channel]).toEqual({ deliverable: reasons[channel] === null, reason: reasons[channel] });
    }
    // A warning for each chosen channel that cannot work, none for the others, in the order given.
    const warnings = deliveryWarnings(["sms", "email", "push"], recipient);
    expect(warnings.map((w) => [w.channel, w.code])).toEqual(
      (["sms", "email", "push"] as const).filter((c) => reasons[c] !== null).map((c) => [c, reasons[c]]),
    );
    for (const w of warnings) expect(w.message.length).toBeGreaterThan(10);
    expect(deliveryWarnings([], recipient)).toEqual([]);
  });
});

interface CreatedWithWarnings {
  notification: NotificationDto;
  warnings?: { code: string; channel: string; message: string }[];
}

describe("warnings on POST /api/notifications and deliverability in the admin API", () => {
  let h: TestHerald;
  let call: ReturnType<typeof api>;
  const create = (userId: string, extra: Record<string, unknown> = {}) =>
    call<CreatedWithWarnings>("POST", "/api/notifications", { token: h.adminToken, body: { userId, type: "new_message", title: "t", message: "m", ...extra } });
  const setPrefs = async (userId: string, body: Record<string, unknown>) =>
    expect((await call("PATCH", `/api/users/${userId}/preferences`, { token: h.adminToken, body })).status).toBe(200);
  const putUser = async (userId: string, body: Record<string, unknown>) => expect((await call("PUT", `/api/users/${userId}`, { token: h.adminToken, body })).status).toBe(200);
  const subscribe = (userId: string) =>
    h.database.query(`INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) VALUES ($1, $2, 'p', 'a')`, [userId, `https://push.example.test/${userId}`]);
  const stored = async (id: string) => (await h.database.query("SELECT 1 FROM notifications WHERE id = $1", [id])).length === 1;

  beforeAll(async () => {
    h = await startTestHerald();
    call = api(h);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("a user missing from the directory: created, with a warning that e-mail has nowhere to go", async () => {
    const res = await create("ghost");
    expect(res.status).toBe(201);
    expect(await stored(res.body.notification.id)).toBe(true);
    expect(res.body.warnings).toEqual([{ code: "user_not_in_directory", channel: "email", message: expect.stringContaining("directory") }]);
  });

  it("SMS and push switched on without a phone or a subscription: one warning each; e-mail with an address: none", async () => {
    await putUser("no-phone", { email: "no-phone@example.test" });
    await setPrefs("no-phone", { smsEnabled: true, browserPushEnabled: true });
    const res = await create("no-phone");
    expect(res.status).toBe(201);
    expect(await stored(res.body.notification.id)).toBe(true);
    expect(res.body.warnings?.map((w) => [w.channel, w.code]).sort()).toEqual([
      ["push", "no_push_subscription"],
      ["sms", "no_phone_number"],
    ]);
  });

  it("e-mail switched on for a directory entry without an address: no_email_address", async () => {
    await putUser("no-email", { name: "No Email" });
    const res = await create("no-email");
    expect(res.body.warnings).toEqual([{ code: "no_email_address", channel: "email", message: expect.any(String) }]);
  });

  it("every chosen channel can work: the answer has no `warnings` field; a channel switched off is never warned about", async () => {
    await putUser("complete", { email: "complete@example.test", phone: "+14155550100" });
    await setPrefs("complete", { smsEnabled: true, browserPushEnabled: true });
    await subscribe("complete");
    const res = await create("complete");
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty("warnings");
    await setPrefs("ghost-quiet", { emailEnabled: false });
    expect((await create("ghost-quiet")).body).not.toHaveProperty("warnings");
  });

  it("adding the user to the directory ends the warning at once (the cached directory facts are dropped)", async () => {
    expect((await create("late-comer")).body.warnings?.map((w) => w.code)).toEqual(["user_not_in_directory"]);
    await putUser("late-comer", { email: "late@example.test" });
    expect((await create("late-comer")).body).not.toHaveProperty("warnings");
    await putUser("late-comer", { email: null });
    expect((await create("late-comer")).body.warnings?.map((w) => w.code)).toEqual(["no_email_address"]);
  });

  it("a push subscription registered after a warning ends it on the next creation", async () => {
    await setPrefs("push-late", { browserPushEnabled: true, emailEnabled: false });
    expect((await create("push-late")).body.warnings?.map((w) => w.code)).toEqual(["no_push_subscription"]);
    await subscribe("push-late");
    expect((await create("push-late")).body).not.toHaveProperty("warnings");
  });

  it("the library's create answers as before unless asked for warnings", async () => {
    const input = { userId: "ghost-lib", type: "new_message", title: "t", message: "m" };
    const plain = await h.herald.notifications.create(input);
    expect(plain).not.toHaveProperty("warnings");
    expect(plain.status).toBe("created");
    const asked = await h.herald.notifications.create(input, { deliveryWarnings: true });
    expect(asked.warnings?.map((w) => w.code)).toEqual(["user_not_in_directory"]);
    const dto = await h.herald.notifications.createAndSendNotification(input);
    expect(Object.keys(dto!)).not.toContain("warnings");
  });

  it("GET /api/users/{id} says per channel whether it can reach the user, and why not", async () => {
    const res = await call<{ id: string; deliverability: Record<string, { deliverable: boolean; reason: string | null }> }>("GET", "/api/users/no-phone", { token: h.adminToken });
    expect(res.status).toBe(200);
    expect(res.body.deliverability).toEqual({
      in_app: { deliverable: true, reason: null },
      email: { deliverable: true, reason: null },
      push: { deliverable: false, reason: "no_push_subscription" },
      sms: { deliverable: false, reason: "no_phone_number" },
    });
    const ghost = await call("GET", "/api/users/ghost/deliverability", { token: h.adminToken });
    expect(ghost.body).toEqual({
      in_app: { deliverable: true, reason: null },
      email: { deliverable: false, reason: "user_not_in_directory" },
      push: { deliverable: false, reason: "no_push_subscription" },
      sms: { deliverable: false, reason: "user_not_in_directory" },
    });
    expect((await call("GET", "/api/users/ghost/deliverability", { token: await h.tokenFor("ghost") })).status).toBe(403);
  });
});
