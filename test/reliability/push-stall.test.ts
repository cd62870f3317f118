/**
 * One user cannot stall out-of-app delivery for everyone (issue 15.3): a
 * provider registers 6 push endpoints that accept a connection and never
 * answer; another user's e-mail, created right after, must still leave while
 * those requests hang. Real Herald (its own worker, default timings), real
 * SMTP (smtp-server on loopback), real hanging HTTP endpoints.
 */
import { type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SmtpReceiver, seedUser, startSmtpReceiver, waitFor } from "../channels/support.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { badInput, record } from "./support/figures.js";

let smtp: SmtpReceiver;
let t: TestHerald;
const hanging = new Set<ServerResponse>();
const stall = createServer((req, res) => {
  req.resume();
  req.on("end", () => hanging.add(res));
  res.on("close", () => hanging.delete(res));
});

beforeAll(async () => {
  smtp = await startSmtpReceiver();
  await new Promise<void>((r) => stall.listen(0, "127.0.0.1", r));
  t = await startTestHerald({ jobs: true, env: { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(smtp.port), EMAIL_SECURE: "false" } });
});
afterAll(async () => {
  await t?.stop();
  stall.closeAllConnections();
  await new Promise<void>((r) => stall.close(() => r()));
  await smtp?.close();
});

async function create(userId: string, title: string) {
  const res = await fetch(`${t.baseUrl}/api/notifications`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ userId, type: "new_message", priority: "normal", title, message: "m" }),
  });
  expect(res.status).toBe(201);
}

describe("a user whose push endpoints never answer", () => {
  it("does not delay another user's e-mail: it is sent while all six push requests still hang", async () => {
    const port = (stall.address() as AddressInfo).port;
    const mallory = await t.tokenFor("stall-mallory");
    await t.database.query("INSERT INTO notification_preferences (user_id, browser_push_enabled, email_enabled) VALUES ('stall-mallory', true, false)");
    await seedUser(t.database, { id: "stall-alice", email: "alice@example.test" });
    // E-mail at once (a normal notification would otherwise wait EMAIL_UNSEEN_DELAY to be seen in-app).
    await t.database.query("INSERT INTO notification_preferences (user_id, email_immediate) VALUES ('stall-alice', 'always')");
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${t.baseUrl}/api/push/subscriptions`, {
        method: "POST",
        headers: { authorization: `Bearer ${mallory}`, "content-type": "application/json" },
        body: JSON.stringify({ endpoint: `http://127.0.0.1:${port}/push/${i}`, keys: { p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", auth: "tBHItJI5svbpez7KI4CCXg" } }),
      });
      expect(res.status).toBe(201);
    }
    badInput("push_endpoint_never_answers", 6);
    await create("stall-mallory", "for the stalled endpoints");
    // The push job is under way: its six requests are open together.
    await waitFor(() => hanging.size === 6, "six hanging push requests", 20_000);
    await create("stall-alice", "for alice");
    // The bound is generous (the push deadline is 10 s); the point is the order below.
    const mail = await waitFor(() => smtp.mails.find((m) => m.subject?.includes("for alice")), "alice's e-mail", 9_000);
    expect(mail).toBeTruthy();
    // Alice's e-mail left while all six push requests were still hanging.
    expect(hanging.size).toBe(6);
    record({ checked: 1, lost: 0 });
  });
});
