/**
 * 10 parallel creations with one idempotencyKey: one row, and every caller
 * gets the same notification back (same id and content, same status code);
 * with different content, one wins and the others get 409; after the user
 * deleted it, parallel replays all answer "deleted" and create nothing.
 * The key is per user: another user's identical key is another notification.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import type { Created, NotificationDto } from "../support/bodies.js";
import { record } from "./support/figures.js";
import { call } from "./support/rest.js";

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

const CONTENT = ["id", "seq", "userId", "type", "priority", "title", "message", "description", "icon", "actionUrl", "actionLabel", "relatedId", "data", "createdAt"] as const;
const content = (n: NotificationDto) => Object.fromEntries(CONTENT.map((k) => [k, n[k]]));

describe("idempotent creation under concurrency", () => {
  it("10 parallel POSTs with the same key make one row and identical answers, in 5 rounds", async () => {
    let checked = 0;
    for (let round = 0; round < 5; round++) {
      const key = `order-${round}-${Date.now()}`;
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          call<Created>(h.baseUrl, "POST", "/api/notifications", {
            token: h.adminToken,
            body: { userId: "idem-user", type: "payment_received", title: "Paid", message: "You were paid", data: { i: 1, n: 2 }, idempotencyKey: key },
          }),
        ),
      );
      const statuses = new Set(answers.map((a) => a.status));
      expect([...statuses]).toEqual([201]);
      const ids = new Set(answers.map((a) => a.body.notification.id));
      expect(ids.size).toBe(1);
      const first = content(answers[0]!.body.notification);
      for (const a of answers) expect(content(a.body.notification)).toEqual(first);
      const rows = await h.database.query("SELECT id FROM notifications WHERE user_id = 'idem-user' AND idempotency_key = $1", [key]);
      expect(rows).toHaveLength(1);
      const queue = await h.database.query("SELECT count(*)::int AS n FROM notification_queue WHERE notification_id = $1", [rows[0]!.id]);
      expect((queue[0] as { n: number }).n).toBeLessThanOrEqual(3); // at most one row per channel, never one per caller
      checked += 1;
    }
    record({ checked, lost: 0, userDuplicates: 0 });
  });

  it("10 parallel POSTs with one key and ten different contents: one 201, nine 409, one row", async () => {
    const key = `race-${Date.now()}`;
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        call<Created>(h.baseUrl, "POST", "/api/notifications", {
          token: h.adminToken,
          body: { userId: "idem-race", type: "new_message", title: `Version ${i}`, message: "m", idempotencyKey: key },
        }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, ...Array(9).fill(409)]);
    const winner = answers.find((a) => a.status === 201)!.body.notification;
    const rows = await h.database.query<{ id: string; title: string }>("SELECT id, title FROM notifications WHERE user_id = 'idem-race'");
    expect(rows).toEqual([{ id: winner.id, title: winner.title }]);
    record({ checked: 1, lost: 0, userDuplicates: 0, badInputs: { idempotency_reuse: 9 } });
  });

  it("10 parallel replays after the user deleted it all answer deleted with the original id, and nothing comes back", async () => {
    const body = { userId: "idem-gone", type: "booking_request", title: "Booking", message: "m", idempotencyKey: "gone-1" };
    const first = await call<Created>(h.baseUrl, "POST", "/api/notifications", { token: h.adminToken, body });
    const id = first.body.notification.id as string;
    const del = await call(h.baseUrl, "DELETE", `/api/notifications/${id}`, { token: await h.tokenFor("idem-gone") });
    expect(del.status).toBe(204);
    const answers = await Promise.all(Array.from({ length: 10 }, () => call<Created>(h.baseUrl, "POST", "/api/notifications", { token: h.adminToken, body })));
    for (const a of answers) expect([a.status, a.body]).toEqual([200, { notification: null, reason: "deleted", id }]);
    expect(await h.database.query("SELECT 1 FROM notifications WHERE user_id = 'idem-gone'")).toHaveLength(0);
    record({ checked: 1, lost: 0, userDuplicates: 0 });
  });

  it("the same key for two users makes two notifications", async () => {
    const body = (userId: string) => ({ userId, type: "new_message", title: "t", message: "m", idempotencyKey: "shared-key" });
    const [a, b] = await Promise.all([
      call<Created>(h.baseUrl, "POST", "/api/notifications", { token: h.adminToken, body: body("idem-a") }),
      call<Created>(h.baseUrl, "POST", "/api/notifications", { token: h.adminToken, body: body("idem-b") }),
    ]);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.body.notification.id).not.toBe(b.body.notification.id);
  });
});
