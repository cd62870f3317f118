/**
 * Property-based fuzzing (fast-check) of every body-taking route: whatever
 * the body, the answer is 2xx or a 4xx with a problem body, never a 5xx; a
 * 4xx writes nothing (row counts and the target row unchanged). Bodies over
 * the limit get 413.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/index.js";
import { TEST_SECRET, type TestHerald, startTestHerald } from "../support/herald.js";
import type { Created, Problem } from "../support/bodies.js";
import { badInput } from "./support/figures.js";
import { type Answer, call, isProblem } from "./support/rest.js";

const RUNS = 60;
let h: TestHerald;
let alice: string;
let aliceId: string;
const outcomes: Record<string, number> = {};

const counts = async () =>
  JSON.stringify(
    await h.database.query(
      `SELECT (SELECT count(*)::int FROM notifications) AS notifications,
              (SELECT count(*)::int FROM notification_queue) AS queue,
              (SELECT count(*)::int FROM notification_preferences) AS preferences,
              (SELECT count(*)::int FROM users) AS users,
              (SELECT count(*)::int FROM email_digests) AS digests,
              (SELECT count(*)::int FROM notification_templates) AS templates`,
    ),
  );
const targets = async () =>
  JSON.stringify([
    await h.database.query("SELECT * FROM notifications WHERE id = $1", [aliceId]),
    await h.database.query("SELECT * FROM notification_preferences WHERE user_id = 'alice'"),
    await h.database.query("SELECT * FROM users WHERE id = 'alice'"),
  ]);

beforeAll(async () => {
  h = await startTestHerald();
  alice = await h.tokenFor("alice");
  await call(h.baseUrl, "PUT", "/api/users/alice", { token: h.adminToken, body: { email: "alice@example.com", name: "Alice" } });
  const n = await call<Created>(h.baseUrl, "POST", "/api/notifications", {
    token: h.adminToken,
    body: { userId: "alice", type: "new_message", title: "t", message: "m" },
  });
  aliceId = n.body.notification.id;
  await call(h.baseUrl, "PATCH", "/api/preferences", { token: alice, body: { soundVolume: 40 } });
});
afterAll(async () => {
  await h?.stop();
});

/** A valid body with one field replaced, removed or added (prototype keys included). */
function mutated(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(null, "", " ", -1, 0, 1e308, -0, 2 ** 53 + 1, "x".repeat(5000), "\u0000", "<script>", "'; DROP TABLE notifications; --", "2000-01-01T00:00:00Z", [], {}),
  );
  return fc.oneof(
    fc.record({ key: fc.constantFrom(...keys), value }).map(({ key, value: v }) => ({ ...valid, [key]: v })),
    fc.constantFrom(...keys).map((key) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== key))),
    fc.record({ key: fc.constantFrom("__proto__", "constructor", "prototype", "userId", "role", "extra", ""), value }).map(({ key, value: v }) => ({ ...valid, [key]: v })),
  );
}

const anyBody = (valid: Record<string, unknown>) =>
  fc.oneof(
    { weight: 3, arbitrary: mutated(valid) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ json: v })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => ({ raw: s })) },
  );

interface Route {
  name: string;
  method: string;
  path: () => string;
  token: () => Promise<string>;
  valid: () => Record<string, unknown>;
}

let serial = 0;
const routes: Route[] = [
  { name: "POST /api/notifications", method: "POST", path: () => "/api/notifications", token: async () => h.adminToken, valid: () => ({ userId: "alice", type: "new_message", title: "Hello", message: "World", priority: "high", actionUrl: "/x", data: { a: 1 } }) },
  { name: "PATCH /api/notifications/:id", method: "PATCH", path: () => `/api/notifications/${aliceId}`, token: async () => alice, valid: () => ({ read: true, archived: false }) },
  { name: "PATCH /api/preferences", method: "PATCH", path: () => "/api/preferences", token: async () => alice, valid: () => ({ soundVolume: 50, quietHoursStart: "22:00", quietHoursEnd: "07:00", frequency: "hourly", emailDigestFrequency: "daily" }) },
  { name: "PUT /api/users/:id", method: "PUT", path: () => "/api/users/alice", token: async () => h.adminToken, valid: () => ({ email: "alice@example.com", name: "Alice", timezone: "Europe/Paris", locale: "fr-FR", phone: "+33612345678" }) },
  { name: "POST /api/analytics/events", method: "POST", path: () => "/api/analytics/events", token: async () => alice, valid: () => ({ notificationId: aliceId, eventType: "clicked", metadata: { device: "desktop" } }) },
  // 5 per minute per credential: a fresh credential per try keeps the fuzzer past the rate limit.
  { name: "POST /api/digests/test", method: "POST", path: () => "/api/digests/test", token: () => mintToken(TEST_SECRET, { sub: `fuzz-digest-${serial++}` }), valid: () => ({ frequency: "daily" }) },
];

async function send(route: Route, body: unknown): Promise<Answer> {
  const token = await route.token();
  const b = body as { json?: unknown; raw?: string };
  if (b && typeof b === "object" && "raw" in b) return call(h.baseUrl, route.method, route.path(), { token, raw: b.raw! });
  if (b && typeof b === "object" && "json" in b && Object.keys(b).length === 1) return call(h.baseUrl, route.method, route.path(), { token, raw: JSON.stringify(b.json) ?? "" });
  return call(h.baseUrl, route.method, route.path(), { token, raw: JSON.stringify(body) });
}

describe("fuzzed bodies", () => {
  for (const route of routes) {
    it(`${route.name}: never 5xx, 4xx is a problem body and writes nothing`, async () => {
      let tried = 0;
      await fc.assert(
        fc.asyncProperty(anyBody(route.valid()), async (body) => {
          tried += 1;
          const [c0, t0] = [await counts(), await targets()];
          const a = await send(route, body);
          const key = `${route.name} ${a.status}`;
          outcomes[key] = (outcomes[key] ?? 0) + 1;
          if (a.status >= 500) throw new Error(`${a.status} for ${JSON.stringify(body)}: ${a.text}`);
          if (a.status >= 400) {
            if (!isProblem(a, a.status)) throw new Error(`not a problem body for ${JSON.stringify(body)}: ${a.text}`);
            if ((await counts()) !== c0 || (await targets()) !== t0) throw new Error(`a ${a.status} wrote something for ${JSON.stringify(body)}`);
          }
        }),
        { numRuns: RUNS },
      );
      badInput("fuzz_body", tried);
    });
  }

  it("fuzzed path parameters and query strings are never a 5xx", async () => {
    let tried = 0;
    const segment = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.uuid(),
      fc.constantFrom("..", "%2e%2e", "%00", "%ff", "null", "-1", "1e999", "' OR 1=1 --", "__proto__", "x".repeat(300)),
    );
    const paths = (s: string) => {
      const e = encodeURIComponent(s).replace(/%25(00|ff|2e)/gi, "%$1");
      return [
        ["GET", `/api/notifications/${e}`, alice],
        ["PATCH", `/api/notifications/${e}`, alice],
        ["DELETE", `/api/notifications/${e}`, alice],
        ["PUT", `/api/users/${e}`, h.adminToken],
        ["GET", `/api/templates/${e}`, h.adminToken],
        ["GET", `/api/analytics/notifications/${e}`, h.adminToken],
        ["GET", `/api/notifications?limit=${e}&offset=${e}&type=${e}`, alice],
        ["GET", `/api/analytics/trends?interval=${e}&days=${e}`, h.adminToken],
      ] as const;
    };
    await fc.assert(
      fc.asyncProperty(segment, async (seg) => {
        const c0 = await counts();
        let created = false;
        for (const [method, path, token] of paths(seg)) {
          tried += 1;
          const body = method === "PATCH" ? { read: true } : method === "PUT" ? { name: "N" } : undefined;
          const a = await call(h.baseUrl, method, path, { token, ...(body ? { body } : {}) });
          if (a.status >= 500) throw new Error(`${a.status} for ${method} ${path}: ${a.text}`);
          if (a.status >= 400 && !isProblem(a, a.status)) throw new Error(`not a problem body for ${method} ${path}: ${a.text}`);
          if (method === "PUT" && a.status === 200) created = true; // a valid user id: a new directory entry
        }
        if (!created && (await counts()) !== c0) throw new Error(`path ${JSON.stringify(seg)} wrote something`);
      }),
      { numRuns: 40 },
    );
    badInput("fuzz_path", tried);
  });

  it("a user id of 255 characters works in the path; longer ones get a problem body", async () => {
    const id = `u${"x".repeat(254)}`;
    const ok = await call<{ id: string }>(h.baseUrl, "PUT", `/api/users/${id}`, { token: h.adminToken, body: { name: "Long" } });
    expect(ok.status).toBe(200);
    expect(ok.body.id).toBe(id);
    for (const len of [256, 600, 5000]) {
      const a = await call(h.baseUrl, "PUT", `/api/users/${"y".repeat(len)}`, { token: h.adminToken, body: { name: "Long" } });
      expect([400, 414], `length ${len}`).toContain(a.status);
      expect(isProblem(a, a.status)).toBe(true);
    }
    const badUrl = await call(h.baseUrl, "GET", "/api/notifications/%E0%A4%A", { token: alice });
    expect(badUrl.status).toBe(400);
    expect(isProblem(badUrl, 400)).toBe(true);
    badInput("fuzz_path", 4);
  });

  it("the fuzzer reached both sides: some bodies accepted, most refused", () => {
    const ok = Object.entries(outcomes).filter(([k]) => / 2\d\d$/.test(k)).reduce((a, [, v]) => a + v, 0);
    const refused = Object.entries(outcomes).filter(([k]) => / 4\d\d$/.test(k)).reduce((a, [, v]) => a + v, 0);
    expect(ok).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(ok);
  });

  it("NUL, unpaired surrogates and deep nesting anywhere in a body: 400 naming the field on every route, nothing stored", async () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
    let tried = 0;
    for (const route of routes) {
      const valid = route.valid();
      const key = Object.keys(valid)[0]!;
      const bodies = [
        JSON.stringify({ ...valid, [key]: "x\u0000y" }),
        JSON.stringify({ ...valid, extra: { nested: ["ok", "\u0000"] } }),
        JSON.stringify({ ...valid, "k\u0000": 1 }),
        JSON.stringify({ ...valid, [key]: "x\ud800" }),
        `{"${key}":${deep(10_000)}}`,
        `{"${key}":${deep(40)}}`,
        `${"[".repeat(50_000)}${"]".repeat(50_000)}`,
      ];
      for (const raw of bodies) {
        tried += 1;
        const [c0, t0] = [await counts(), await targets()];
        const a = await call<Problem>(h.baseUrl, route.method, route.path(), { token: await route.token(), raw });
        expect(a.status, `${route.name} ${raw.slice(0, 60)}`).toBe(400);
        expect(isProblem(a, 400)).toBe(true);
        expect(a.body.code).toBe("HERALD_VALIDATION");
        expect(a.body.errors?.[0]?.field, raw.slice(0, 60)).toMatch(/^body/);
        expect(await counts()).toBe(c0);
        expect(await targets()).toBe(t0);
      }
    }
    // The analytics writer would have kept a bad event in memory: a read flushes it, and none of alice's is unstorable.
    await h.herald.analytics.getUserMetrics("alice");
    expect(await h.database.query("SELECT count(*)::int AS n FROM analytics_events WHERE metadata::text LIKE '%nested%'")).toEqual([{ n: 0 }]);
    badInput("fuzz_body", tried);
  });

  it("bodies over the limit get 413 with a problem body on every route, declared or chunked", async () => {
    const big = JSON.stringify({ title: "x".repeat(300 * 1024) });
    for (const route of routes) {
      const a = await call(h.baseUrl, route.method, route.path(), { token: await route.token(), raw: big });
      expect(a.status, route.name).toBe(413);
      expect(isProblem(a, 413)).toBe(true);
    }
    // Chunked, no Content-Length: the limit is enforced while reading.
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 160) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(`${h.baseUrl}/api/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.adminToken}`, "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit).catch((err: Error) => ({ status: 0, err }));
    // Either a 413 answer, or the server cut the upload (which fetch reports as an error).
    expect([0, 413]).toContain(res.status);
    expect((await call(h.baseUrl, "GET", "/health")).status).toBe(200);
    badInput("oversized_body", routes.length + 1);
  });
});
