/**
 * The upgrade's token transports and refusals (docs/websocket.md, "Connecting"):
 * `Authorization: Bearer` connects like `?token=` and the sub-protocol (precedence
 * query, then Authorization, then Sec-WebSocket-Protocol); every refusal is the REST
 * API's problem body with REST's Content-Type and code, a 401 keeping WWW-Authenticate;
 * the SDK still connects through both of its transports.
 */
import type http from "node:http";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { HeraldClient, type WebSocketConstructor } from "../../src/client/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { readHandshake, refuseUpgrade } from "../../src/realtime/handshake.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { type UpgradeAnswer as Answer, Probe, upgrade } from "./helpers.js";

/** What REST answers on a provider route for the same credential. */
async function restAnswer(baseUrl: string, authorization?: string): Promise<Answer> {
  const res = await fetch(`${baseUrl}/api/notifications`, { headers: authorization ? { authorization } : {} });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

function fakeRequest(url: string, headers: http.IncomingHttpHeaders = {}): http.IncomingMessage {
  return { url, headers } as http.IncomingMessage;
}

describe("readHandshake: where the token is read from", () => {
  const A = "aaa.bbb.ccc";
  const B = "ddd.eee.fff";
  const C = "ggg.hhh.iii";
  const cases: Array<[string, string, http.IncomingHttpHeaders, string | undefined]> = [
    ["?token= alone", `/ws?token=${A}`, {}, A],
    ["Authorization: Bearer alone", "/ws", { authorization: `Bearer ${B}` }, B],
    ["the scheme in any case, as REST reads it", "/ws", { authorization: `bearer  ${B}` }, B],
    ["Sec-WebSocket-Protocol bare JWT alone", "/ws", { "sec-websocket-protocol": `herald.v1, ${C}` }, C],
    ["Sec-WebSocket-Protocol bearer.<jwt> alone", "/ws", { "sec-websocket-protocol": `herald.v1, bearer.${C}` }, C],
    ["?token= wins over Authorization and the sub-protocol", `/?token=${A}`, { authorization: `Bearer ${B}`, "sec-websocket-protocol": `herald.v1, ${C}` }, A],
    ["Authorization wins over the sub-protocol", "/", { authorization: `Bearer ${B}`, "sec-websocket-protocol": `herald.v1, ${C}` }, B],
    ["an empty ?token= is no token", "/ws?token=", { authorization: `Bearer ${B}` }, B],
    ["a non-Bearer Authorization is ignored", "/ws", { authorization: "Basic dXNlcjpwYXNz", "sec-websocket-protocol": `herald.v1, ${C}` }, C],
    ["x-api-key is not read on the upgrade", "/ws", { "x-api-key": "some-admin-key" }, undefined],
    ["nothing", "/ws", {}, undefined],
  ];
  it.each(cases)("%s", (_name, url, headers, token) => {
    expect(readHandshake(fakeRequest(url, headers)).token).toBe(token);
  });
});

describe("refuseUpgrade writes the REST API's problem", () => {
  function refusal(status: 400 | 401 | 403 | 429 | 503, detail: string): Promise<string> {
    const socket = new PassThrough();
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    const done = new Promise<string>((resolve) => socket.on("end", () => resolve(Buffer.concat(chunks).toString("utf8"))));
    refuseUpgrade(socket, status, "test", detail);
    return done;
  }
  const table = [
    [400, "HERALD_VALIDATION", "Invalid request"],
    [401, "HERALD_UNAUTHENTICATED", "Authentication required"],
    [403, "HERALD_FORBIDDEN", "Not allowed"],
    [429, "HERALD_RATE_LIMITED", "Too many requests"],
    [503, "HERALD_UNAVAILABLE", "Service unavailable"],
  ] as const;
  it.each(table)("%i: code %s", async (status, code, title) => {
    const raw = await refusal(status, "why");
    const [head, body] = raw.split("\r\n\r\n");
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toContain("\r\nContent-Type: application/problem+json; charset=utf-8");
    expect(JSON.parse(body!)).toEqual({ type: `https://herald.dev/problems/${code.toLowerCase().replace(/_/g, "-")}`, title, status, detail: "why", code });
    expect(head!.includes("\r\nRetry-After: ")).toBe(status === 429 || status === 503);
    expect(head!.includes("\r\nWWW-Authenticate: Bearer ")).toBe(status === 401);
  });
  it("a detail with a quote or a line break cannot break out of WWW-Authenticate", async () => {
    const head = (await refusal(401, 'bad "x"\r\nSet-Cookie: a=b')).split("\r\n\r\n")[0]!;
    expect(head.split("\r\n").filter((l) => l.startsWith("Set-Cookie"))).toEqual([]);
    expect(head).toContain(`error_description="bad 'x'  Set-Cookie: a=b"`);
  });
});

describe("the upgrade over a real server", () => {
  let h: TestHerald;
  beforeAll(async () => {
    // Many refusals from one address: the verdicts are the subject, not the failed-authentication budget.
    h = await startTestHerald({ env: { HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: "100000" } });
  });
  afterAll(() => h?.stop());

  async function create(userId: string, title: string): Promise<NotificationDto> {
    const res = await fetch(`${h.baseUrl}/api/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ userId, type: "new_message", title, message: `${title} body` }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { notification: NotificationDto }).notification;
  }

  it("Authorization: Bearer <jwt> connects: sync on open, then live notifications", async () => {
    const token = await h.tokenFor("hs-authz");
    const ws = new WebSocket(`${h.wsUrl}/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const probe = new Probe(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    await probe.next("sync");
    expect(await probe.next("unread_count")).toEqual({ type: "unread_count", count: 0 });
    const n = await create("hs-authz", "over an Authorization socket");
    expect((await probe.next("notification")).notification.id).toBe(n.id);
    await probe.close();
  });

  it("precedence on the wire: a valid ?token= connects despite a bad Authorization; a valid Authorization despite a bad sub-protocol token", async () => {
    const token = await h.tokenFor("hs-precedence");
    expect((await upgrade(h.baseUrl, `?token=${token}`, { authorization: "Bearer not.a.token" })).status).toBe(101);
    expect((await upgrade(h.baseUrl, "", { authorization: `Bearer ${token}`, "sec-websocket-protocol": "herald.v1, not.a.token" })).status).toBe(101);
    // And the other way round, the first source decides even when a later one is valid.
    expect((await upgrade(h.baseUrl, "", { authorization: "Bearer not.a.token", "sec-websocket-protocol": `herald.v1, ${token}` })).status).toBe(401);
  });

  it("a bad Authorization gets REST's 401 for the same header: same problem body and Content-Type, plus WWW-Authenticate", async () => {
    for (const authorization of ["Bearer garbage", `Bearer ${await h.tokenFor("hs-expired", -10)}`, `Bearer ${h.adminToken}`]) {
      const ws = await upgrade(h.baseUrl, "", { authorization });
      const rest = await restAnswer(h.baseUrl, authorization.endsWith(h.adminToken) ? "Bearer garbage" : authorization);
      expect(ws.status, authorization).toBe(401);
      expect(rest.status).toBe(401);
      expect(ws.headers["content-type"]).toBe(rest.headers["content-type"]);
      expect(JSON.parse(ws.body)).toEqual(JSON.parse(rest.body));
      expect(JSON.parse(ws.body)).toMatchObject({ status: 401, code: "HERALD_UNAUTHENTICATED", title: "Authentication required" });
      expect(ws.headers["www-authenticate"]).toMatch(/^Bearer error="invalid_token"/);
    }
  });

  it("no token at all: REST's 401 body (\"A valid token is required\")", async () => {
    const ws = await upgrade(h.baseUrl, "");
    const rest = await restAnswer(h.baseUrl);
    expect(ws.status).toBe(401);
    expect(JSON.parse(ws.body)).toEqual(JSON.parse(rest.body));
  });

  it("a malformed ?device= is REST's 400 problem (HERALD_VALIDATION)", async () => {
    const ws = await upgrade(h.baseUrl, `?token=${await h.tokenFor("hs-device")}&device=${"x".repeat(65)}`);
    expect(ws.status).toBe(400);
    expect(ws.headers["content-type"]).toBe("application/problem+json; charset=utf-8");
    expect(JSON.parse(ws.body)).toMatchObject({ status: 400, code: "HERALD_VALIDATION", type: "https://herald.dev/problems/herald-validation" });
  });

  it.each(["protocol", "query"] as const)("the SDK connects with tokenTransport %s and receives a notification", async (tokenTransport) => {
    const userId = `hs-sdk-${tokenTransport}`;
    const client = new HeraldClient({ url: `${h.wsUrl}/ws`, token: await h.tokenFor(userId), WebSocket: WebSocket as unknown as WebSocketConstructor, tokenTransport, deviceId: "sdk" });
    const synced = client.once("sync");
    client.connect();
    await synced;
    expect(client.state).toBe("open");
    const got = new Promise<NotificationDto>((resolve) => client.on("notification", (n) => resolve(n)));
    const n = await create(userId, "to the SDK");
    expect((await got).id).toBe(n.id);
    client.close();
  });

  it("the SDK connects through Authorization with a constructor that adds the header (the recipe in docs/websocket.md)", async () => {
    const token = await h.tokenFor("hs-sdk-authz");
    const WithAuth = class extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: { Authorization: `Bearer ${token}` } });
      }
    };
    const client = new HeraldClient({ url: `${h.wsUrl}/ws`, WebSocket: WithAuth as unknown as WebSocketConstructor, deviceId: "sdk-authz" });
    const synced = client.once("sync");
    client.connect();
    await synced;
    expect(client.state).toBe("open");
    client.close();
  });
});
