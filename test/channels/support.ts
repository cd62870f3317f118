/**
 * Real receivers on loopback for the channel tests: an SMS webhook, a Web
 * Push service that verifies the VAPID JWT (ES256, with jose) and decrypts
 * the aes128gcm payload with the subscription's private key (RFC 8291), and
 * an SMTP server (smtp-server + mailparser). Plus small seeding helpers.
 */
import { createECDH, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { importJWK, jwtVerify } from "jose";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import type { Queryable } from "../../src/db/index.js";

/** A Standard Webhooks secret for SMS webhook providers built in tests. */
export const WEBHOOK_SECRET = `whsec_${Buffer.from("herald-test-webhook-secret-32-bytes!").toString("base64")}`;

export async function seedUser(db: Queryable, user: { id: string; email?: string | null; phone?: string | null; timezone?: string }) {
  await db.query(
    `INSERT INTO users (id, email, phone, timezone) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, timezone = EXCLUDED.timezone`,
    [user.id, user.email ?? null, user.phone ?? null, user.timezone ?? "UTC"],
  );
}

export async function seedNotification(
  db: Queryable,
  n: { userId: string; title?: string; message?: string; type?: string; priority?: string; actionUrl?: string | null; createdAt?: Date },
): Promise<string> {
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO notifications (user_id, type, priority, title, message, action_url, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [n.userId, n.type ?? "new_message", n.priority ?? "high", n.title ?? "Hello", n.message ?? "A message", n.actionUrl ?? null, n.createdAt ?? new Date()],
  );
  return row!.id;
}

/** Polls `check` until it returns a truthy value (for state written asynchronously). */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export interface SmsReceiver {
  url: string;
  /** Every request body, including those answered with an error. */
  requests: Record<string, unknown>[];
  /** Bodies answered 2xx. */
  delivered: Record<string, unknown>[];
  close(): Promise<void>;
}

/** `status(n, body)` picks the answer to the n-th request (0-based). */
export async function startSmsReceiver(status: (n: number, body: Record<string, unknown>) => number = () => 200): Promise<SmsReceiver> {
  const requests: Record<string, unknown>[] = [];
  const delivered: Record<string, unknown>[] = [];
  const server = createServer(async (req, res) => {
    const body = JSON.parse((await readBody(req)).toString("utf8")) as Record<string, unknown>;
    const code = status(requests.length, body);
    requests.push(body);
    if (code >= 200 && code < 300) delivered.push(body);
    res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify({ ok: code < 300 }));
  });
  const url = `${await listen(server)}/sms`;
  return { url, requests, delivered, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface PushDelivery {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  claims: Record<string, unknown>;
  vapidKey: string;
  payload: Record<string, unknown>;
}

export interface PushService {
  origin: string;
  /** A browser subscription (endpoint + keys) whose private key this service holds. */
  subscribe(name: string): { endpoint: string; keys: { p256dh: string; auth: string } };
  delivered: PushDelivery[];
  /** Requests refused because the VAPID signature or encryption was wrong. */
  rejected: string[];
  close(): Promise<void>;
}

/** A push service on loopback; `status(path)` picks the answer (201 unless told otherwise). */
export async function startPushService(expectedVapidKey: () => string, status: (path: string) => number = () => 201): Promise<PushService> {
  const browsers = new Map<string, { ecdh: ReturnType<typeof createECDH>; auth: Buffer }>();
  const delivered: PushDelivery[] = [];
  const rejected: string[] = [];
  let origin = "";
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const path = req.url ?? "/";
    try {
      const code = status(path);
      if (code !== 201) {
        res.writeHead(code).end();
        return;
      }
      const auth = String(req.headers.authorization ?? "");
      const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(auth);
      if (!m) throw new Error(`bad Authorization header: ${auth}`);
      const [, token, k] = m;
      if (k !== expectedVapidKey()) throw new Error("VAPID key is not the server's public key");
      const raw = Buffer.from(k!, "base64url");
      if (raw.length !== 65 || raw[0] !== 4) throw new Error("VAPID key is not an uncompressed P-256 point");
      const key = await importJWK(
        { kty: "EC", crv: "P-256", x: raw.subarray(1, 33).toString("base64url"), y: raw.subarray(33).toString("base64url") },
        "ES256",
      );
      const { payload: claims } = await jwtVerify(token!, key, { algorithms: ["ES256"], audience: origin });
      if (typeof claims.sub !== "string" || !/^(mailto:|https:)/.test(claims.sub)) throw new Error("VAPID sub missing");
      if (req.headers["content-encoding"] !== "aes128gcm") throw new Error("Content-Encoding is not aes128gcm");
      if (!/^\d+$/.test(String(req.headers.ttl ?? ""))) throw new Error("TTL header missing");
      const browser = browsers.get(path);
      if (!browser) throw new Error(`no subscription at ${path}`);
      const payload = JSON.parse(decryptAes128gcm(body, browser.ecdh, browser.auth).toString("utf8")) as Record<string, unknown>;
      delivered.push({ path, headers: req.headers, claims: claims as Record<string, unknown>, vapidKey: k!, payload });
      res.writeHead(201).end();
    } catch (err) {
      rejected.push((err as Error).message);
      res.writeHead(400).end((err as Error).message);
    }
  });
  origin = await listen(server);
  return {
    origin,
    delivered,
    rejected,
    subscribe(name) {
      const ecdh = createECDH("prime256v1");
      ecdh.generateKeys();
      const auth = randomBytes(16);
      browsers.set(`/push/${name}`, { ecdh, auth });
      return { endpoint: `${origin}/push/${name}`, keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url") } };
    },
    close: () => closeServer(server),
  };
}

const hmac = (key: Buffer, data: Buffer) => createHmac("sha256", key).update(data).digest();

/** RFC 8291 / RFC 8188 decryption of a single-record aes128gcm body, as a browser does it. */
function decryptAes128gcm(body: Buffer, ecdh: ReturnType<typeof createECDH>, authSecret: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  const uaPublic = ecdh.getPublicKey();
  const shared = ecdh.computeSecret(asPublic);
  const prkKey = hmac(authSecret, shared);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), uaPublic, asPublic, Buffer.from([1])]);
  const ikm = hmac(prkKey, keyInfo);
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from("Content-Encoding: aes128gcm\0\x01", "binary")).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from("Content-Encoding: nonce\0\x01", "binary")).subarray(0, 12);
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  // Strip the padding delimiter (0x02 for the last record) and any zero padding after it.
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  if (plain[end] !== 2) throw new Error("bad record padding delimiter");
  return plain.subarray(0, end);
}

export interface SmtpReceiver {
  port: number;
  mails: ParsedMail[];
  close(): Promise<void>;
}

/** `reject(n)` may return an SMTP error for the n-th message (e.g. 550 for a bad mailbox). */
export async function startSmtpReceiver(reject: (n: number, to: string) => { code: number; message: string } | undefined = () => undefined): Promise<SmtpReceiver> {
  const mails: ParsedMail[] = [];
  let n = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onRcptTo(address, _session, callback) {
      const r = reject(n++, address.address);
      if (r) return callback(Object.assign(new Error(r.message), { responseCode: r.code }));
      callback();
    },
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((mail) => {
          mails.push(mail);
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
