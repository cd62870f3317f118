/**
 * Idempotency keys (issue 16.13, 19.8) through REST: a replay never brings
 * back a notification the user deleted, the same key with other content is a
 * 409 that writes nothing, and a key is remembered for its stated retention.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDEMPOTENCY_RETENTION_MS } from "../../src/notifications/idempotency.js";
import { ManualClock } from "../../src/observability/index.js";
import type { Created, Listed, Problem } from "../support/bodies.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { api, expectProblem, rowCounts } from "./api.js";
import { connect } from "./ws-client.js";

let h: TestHerald;
let call: ReturnType<typeof api>;
const clock = new ManualClock("2024-01-15T12:00:00Z");

beforeAll(async () => {
  h = await startTestHerald({ clock, env: { HERALD_RATE_LIMIT_PER_MINUTE: "600" } });
  call = api(h);
});
afterAll(() => h?.stop());

const body = (userId: string, key: string, over: Record<string, unknown> = {}) => ({
  userId,
  type: "payment_received",
  title: "Paid",
  message: "You were paid $40",
  data: { orderId: "o-1", amount: 40 },
  idempotencyKey: key,
  ...over,
});
const create = <T = Created>(b: unknown) => call<T>("POST", "/api/notifications", { token: h.adminToken, body: b });

describe("idempotencyKey", () => {
  it("a replay after the user deleted the notification answers its id as deleted, creates and pushes nothing", async () => {
    const user = "idem-deleted";
    const token = await h.tokenFor(user);
    const first = await create(body(user, "k1"));
    expect(first.status).toBe(201);
    const id = first.body.notification.id as string;
    expect((await call("DELETE", `/api/notifications/${id}`, { token })).status).toBe(204);

    const ws = await connect(h.wsUrl, token);
    try {
      await ws.next("sync");
      const replayed = await create(body(user, "k1"));
      expect(replayed.status).toBe(200);
      expect(replayed.body).toEqual({ notification: null, reason: "deleted", id });
      expect(replayed.headers.get("idempotent-replayed")).toBe("true");
      ws.send({ type: "ping" });
      await ws.next("pong");
      expect(ws.messages.filter((m) => m.type === "notification")).toEqual([]);
    } finally {
      await ws.close();
    }
    expect((await call<Listed>("GET", "/api/notifications", { token })).body.total).toBe(0);
    expect(await h.database.query("SELECT 1 FROM notifications WHERE user_id = $1", [user])).toHaveLength(0);
    // The library API says the same: nothing to return.
    expect(await h.herald.notifications.createAndSendNotification(body(user, "k1"))).toBeNull();
  });

  it("a replay of a live one answers 201 with the same notification; data key order does not matter", async () => {
    const first = await create(body("idem-live", "k2"));
    const again = await create(body("idem-live", "k2", { data: { amount: 40, orderId: "o-1" } }));
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body.notification).toEqual(first.body.notification);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  it("the same key with other content is a 409 problem naming idempotencyKey, and writes nothing", async () => {
    expect((await create(body("idem-reuse", "k3"))).status).toBe(201);
    const before = await rowCounts(h);
    for (const over of [{ title: "Paid twice" }, { data: { orderId: "o-2", amount: 40 } }, { priority: "low" }]) {
      const res = await create<Problem>(body("idem-reuse", "k3", over));
      expectProblem(res, 409, "HERALD_CONFLICT");
      expect(res.body.errors!.map((e) => e.field)).toEqual(["idempotencyKey"]);
    }
    expect(await rowCounts(h)).toEqual(before);
  });

  it(`is remembered for ${IDEMPOTENCY_RETENTION_MS / 86_400_000} days, then the key is free again`, async () => {
    const first = await create(body("idem-expiry", "k4"));
    clock.advance(IDEMPOTENCY_RETENTION_MS - 60_000);
    expect((await create(body("idem-expiry", "k4"))).body.notification.id).toBe(first.body.notification.id);
    clock.advance(120_000);
    const later = await create(body("idem-expiry", "k4", { title: "A new month" }));
    expect(later.status).toBe(201);
    expect(later.body.notification.id).not.toBe(first.body.notification.id);
  });
});
