/**
 * Outgoing webhooks are signed the Standard Webhooks way (issue 14.4): a real
 * loopback receiver checks webhook-id, webhook-timestamp and webhook-signature
 * with its own HMAC, as the README's snippet does.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutOfAppDelivery, SmsChannel, WebhookSmsProvider, enqueueOutOfApp } from "../../src/channels/index.js";
import { loadWebhookSecret, webhookSignatureHeaders } from "../../src/channels/webhook-signing.js";
import { ConfigError, loadConfig } from "../../src/config/index.js";
import { AnalyticsIngest } from "../../src/analytics/ingest.js";
import { unsubscribeKey } from "../../src/mail/index.js";
import { ManualClock, silentLogger, systemClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { drain, makeWorker } from "./harness.js";
import { seedNotification, seedUser } from "./support.js";

const SECRET = `whsec_${Buffer.from("a-receiver-and-herald-share-this-32b").toString("base64")}`;

/** The receiver's side, written from the spec, not from Herald's code. */
function verify(secret: string, headers: IncomingHttpHeaders, body: string, nowSeconds: number): string | undefined {
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  const sigs = headers["webhook-signature"];
  if (typeof id !== "string" || typeof ts !== "string" || typeof sigs !== "string") return "missing headers";
  if (!/^\d+$/.test(ts) || Math.abs(nowSeconds - Number(ts)) > 300) return "timestamp out of tolerance";
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest();
  for (const entry of sigs.split(" ")) {
    const [version, value] = entry.split(",");
    const got = Buffer.from(value ?? "", "base64");
    if (version === "v1" && got.length === expected.length && timingSafeEqual(got, expected)) return undefined;
  }
  return "no valid signature";
}

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
  await seedUser(db, { id: "u-signed", phone: "+15550009999" });
});
afterAll(async () => db?.cleanup());

async function receiver(secret: string) {
  const seen: { verdict: string | undefined; id: unknown; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const verdict = verify(secret, req.headers, body, Math.floor(Date.now() / 1000));
      seen.push({ verdict, id: req.headers["webhook-id"], body });
      res.writeHead(verdict ? 401 : 200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("signed SMS webhook", () => {
  it("matches the test vector published with the Standard Webhooks specification", () => {
    // github.com/standard-webhooks/standard-webhooks, libraries' shared test: secret, id, timestamp, payload, signature.
    const headers = webhookSignatureHeaders("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    expect(headers).toEqual({
      "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
      "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    });
  });

  it("every request carries a Standard Webhooks signature the receiver verifies, with webhook-id msg_<notification id>", async () => {
    const r = await receiver(SECRET);
    try {
      const clock = new ManualClock("2030-01-07T10:00:00Z");
      const { worker } = makeWorker(db, { sms: new SmsChannel(new WebhookSmsProvider({ url: r.url, secret: SECRET }), "https://app.example.test") }, clock);
      const id = await seedNotification(db, { userId: "u-signed", title: "Signed" });
      await db.transaction((tx) => enqueueOutOfApp(tx, { id, userId: "u-signed" }, { inApp: true, outOfApp: { sms: { mode: "now" } } }, { now: clock.now() }));
      expect(await drain(worker)).toBe(1);
      expect(r.seen).toHaveLength(1);
      expect(r.seen[0]!.verdict).toBeUndefined();
      expect(r.seen[0]!.id).toBe(`msg_${id}`);
      expect(JSON.parse(r.seen[0]!.body)).toMatchObject({ notificationId: id, to: "+15550009999" });
    } finally {
      await r.close();
    }
  });

  it("a receiver holding another secret refuses the request (the signature really depends on the secret)", async () => {
    const r = await receiver(`whsec_${Buffer.from("some-other-secret-of-32-bytes!!!").toString("base64")}`);
    try {
      const provider = new WebhookSmsProvider({ url: r.url, secret: SECRET });
      await expect(provider.send({ to: "+1555", title: "t", message: "m", notificationId: "00000000-0000-4000-8000-000000000001" })).rejects.toThrow(/401/);
      expect(r.seen[0]!.verdict).toBe("no valid signature");
    } finally {
      await r.close();
    }
  });

  it("Herald signs its SMS webhook with a secret generated once into DATA_DIR (mode 0600) when none is configured", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "herald-whsec-"));
    try {
      const config = loadConfig({ NODE_ENV: "test", DATA_DIR: dir, JWT_SECRET: "x".repeat(32) });
      const secret = loadWebhookSecret(config);
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
      expect(Buffer.from(secret.slice(6), "base64").length).toBeGreaterThanOrEqual(24);
      expect(statSync(path.join(dir, "webhook-secret")).mode & 0o777).toBe(0o600);
      expect(loadWebhookSecret(config)).toBe(secret);
      const r = await receiver(secret);
      try {
        const delivery = new OutOfAppDelivery(
          { config: loadConfig({ NODE_ENV: "test", DATA_DIR: dir, JWT_SECRET: "x".repeat(32), SMS_WEBHOOK_URL: r.url }), database: db, clock: systemClock, logger: silentLogger, metrics: new Registry(), instanceId: "i1", analytics: new AnalyticsIngest({ database: db }), unsubscribeKey: unsubscribeKey("x".repeat(32)) },
          {},
        );
        const id = await seedNotification(db, { userId: "u-signed", title: "From Herald" });
        await db.transaction((tx) => enqueueOutOfApp(tx, { id, userId: "u-signed" }, { inApp: true, outOfApp: { sms: { mode: "now" } } }, { now: new Date() }));
        await drain(delivery.worker);
        await delivery.stop();
        expect(r.seen.map((s) => s.verdict)).toEqual([undefined]);
      } finally {
        await r.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("production refuses to start an SMS webhook without HERALD_WEBHOOK_SECRET, and a malformed secret", () => {
    const base = { NODE_ENV: "production", JWT_SECRET: "x".repeat(40), SMS_WEBHOOK_URL: "https://sms.example.test/hook" };
    expect(() => loadConfig(base)).toThrow(ConfigError);
    expect(() => loadConfig(base)).toThrow(/HERALD_WEBHOOK_SECRET/);
    expect(loadConfig({ ...base, HERALD_WEBHOOK_SECRET: SECRET }).webhookSecret).toBe(SECRET);
    expect(() => loadConfig({ ...base, HERALD_WEBHOOK_SECRET: "short" })).toThrow(/HERALD_WEBHOOK_SECRET/);
  });
});
