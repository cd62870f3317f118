/**
 * 10 parallel creations with one idempotencyKey: one row, and every caller
 * gets the same notification back (same id and content, same status code).
 * The key is per user: another user's identical key is another notification.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { record } from "./support/figures.js";
import { call } from "./support/rest.js";

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

const CONTENT = ["id", "seq", "userId", "type", "priority", "title", "message", "description", "icon", "actionUrl", "actionLabel", "relatedId", "data", "createdAt"] as const;
const content = (n: Record<string, unknown>) => Object.fromEntries(CONTENT.map((k) => [k, n[k]]));

describe("idempotent creation under concurrency", () => {
  it("10 parallel POSTs with the same key make one row and identical answers, in 5 rounds", async () => {
    let checked = 0;
    for (let round = 0; round < 5; round++) {
      const key = `order-${round}-${Date.now()}`;
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          call(h.baseUrl, "POST", "/api/notifications", {
            token: h.adminToken,
            // Later callers even send different text: the first creation wins and is what everyone gets.
            body: { userId: "idem-user", type: "payment_received", title: `Paid ${i === 0 ? "" : i}`.trim(), message: "You were paid", idempotencyKey: key },
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

  it("the same key for two users makes two notifications", async () => {
    const body = (userId: string) => ({ userId, type: "new_message", title: "t", message: "m", idempotencyKey: "shared-key" });
    const [a, b] = await Promise.all([
      call(h.baseUrl, "POST", "/api/notifications", { token: h.adminToken, body: body("idem-a") }),
      call(h.baseUrl, "POST", "/api/notifications", { token: h.adminToken, body: body("idem-b") }),
    ]);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.body.notification.id).not.toBe(b.body.notification.id);
  });
});
