/**
 * The server on a bare http.Server (as in the guide's Express example) with
 * tight limits: slow consumers are cut off with memory bounded, silent peers
 * are dropped by the heartbeat, `read` without an inbox is an error.
 */
import { randomUUID } from "node:crypto";
import { type Server, createServer } from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { MemoryBus } from "../../src/bus/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { CloseCodes } from "../../src/protocol/index.js";
import { NotificationWebSocketServer } from "../../src/realtime/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { LOUD, Probe, closedOnServer, eventually } from "./helpers.js";

const LIMIT = 256 * 1024;
let h: TestHerald;
const stops: Array<() => Promise<void>> = [];

/** A WebSocket server on its own bare http.Server, with its own bus and instance id. */
async function bare(options: ConstructorParameters<typeof NotificationWebSocketServer>[2]) {
  const http: Server = createServer((_req, res) => res.end("plain http still works"));
  const bus = new MemoryBus();
  const server = new NotificationWebSocketServer(http, { ...h.herald.runtime, bus, instanceId: `bare-${randomUUID()}` }, options);
  await server.start();
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  stops.push(async () => {
    await server.close();
    await new Promise((resolve) => http.close(resolve));
    await bus.close();
  });
  return { server, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

let server: NotificationWebSocketServer;
let url: string;
let beating: { server: NotificationWebSocketServer; url: string };

beforeAll(async () => {
  h = await startTestHerald();
  ({ server, url } = await bare({ maxBufferedBytes: LIMIT, closeGraceMs: 200 }));
  beating = await bare({ heartbeatMs: 150 });
});
afterAll(async () => {
  for (const stop of stops) await stop();
  await h?.stop();
});

function bigNotification(userId: string, size: number): NotificationDto {
  const now = new Date().toISOString();
  return {
    id: randomUUID(), seq: 1, userId, type: "platform_update", priority: "low", title: "big", message: "x".repeat(size),
    description: null, icon: null, actionUrl: null, actionLabel: null, read: false, archived: false, deliveryStatus: "pending",
    sentAt: null, deliveredAt: null, readAt: null, relatedId: null, data: null, createdAt: now, updatedAt: now,
  };
}

/** Completes a WebSocket handshake over raw TCP, then never reads again. */
async function nonReadingClient(token: string): Promise<net.Socket> {
  const port = new URL(url).port;
  const socket = net.connect(Number(port), "127.0.0.1");
  const key = Buffer.from(randomUUID().slice(0, 16)).toString("base64");
  socket.write(`GET /ws?token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const head = await new Promise<string>((resolve) => socket.once("data", (d) => resolve(d.toString("latin1"))));
  expect(head).toMatch(/^HTTP\/1.1 101/);
  socket.pause();
  return socket;
}

describe("limits", () => {
  it("cuts off a consumer that stops reading (4008) and keeps its server-side buffer bounded", async () => {
    const socket = await nonReadingClient(await h.tokenFor("u-slow"));
    await eventually(() => server.getLocalConnectionsCount(), (n) => n === 1);
    const slowConsumerCuts = async () => {
      const metrics = await h.herald.runtime.metrics.getSingleMetricAsString("herald_ws_errors_total");
      return Number(/reason="slow_consumer"} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    const cutsBefore = await slowConsumerCuts();
    let maxBuffered = 0;
    let pushed = 0;
    // Until the server cuts it off: the connection then leaves the count only when its socket closes
    // (the close grace of a peer that never reads), and pushes to it return at once meanwhile.
    while ((await slowConsumerCuts()) === cutsBefore && pushed < 2000) {
      await server.publishNotification(bigNotification("u-slow", 60 * 1024), LOUD);
      pushed += 1;
      maxBuffered = Math.max(maxBuffered, server.getBufferedBytes());
      if (pushed % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(pushed).toBeLessThan(2000);
    expect(await slowConsumerCuts()).toBe(cutsBefore + 1);
    await eventually(() => server.getLocalConnectionsCount(), (n) => n === 0);
    // Never more than the bound plus the one message that crossed it.
    expect(maxBuffered).toBeLessThanOrEqual(LIMIT + 61 * 1024);
    // Closed on the server already (no local connection left): its session row is written by the next flush.
    await server.flushDeliveryLog();
    const [row] = await h.database.query<{ disconnect_code: number | null }>("SELECT disconnect_code FROM websocket_sessions WHERE user_id = 'u-slow'");
    expect(row!.disconnect_code).toBe(CloseCodes.slowConsumer);
    socket.destroy();
  });

  it("drops a peer that does not answer the heartbeat ping", async () => {
    const ws = new WebSocket(`${beating.url}/ws?token=${await h.tokenFor("u-silent")}`, { autoPong: false });
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    await new Promise((resolve) => ws.once("open", resolve));
    expect(await closed).toBe(1006);
    await closedOnServer(beating.server, "u-silent");
    const [row] = await h.database.query<{ disconnect_reason: string | null }>("SELECT disconnect_reason FROM websocket_sessions WHERE user_id = 'u-silent'");
    expect(row!.disconnect_reason).toBe("heartbeat timeout");
  });

  it("keeps a peer that answers pings across many heartbeats", async () => {
    const probe = await Probe.open(beating.url, await h.tokenFor("u-alive"));
    await probe.next("sync");
    let pings = 0;
    await new Promise<void>((resolve) => probe.ws.on("ping", () => ++pings === 4 && resolve()));
    expect(probe.ws.readyState).toBe(WebSocket.OPEN);
    await probe.close();
  });

  it("answers read with an error when no inbox is registered", async () => {
    const probe = await Probe.open(url, await h.tokenFor("u-noinbox"));
    await probe.next("sync");
    probe.send({ type: "read", id: randomUUID() });
    expect((await probe.next("error")).code).toBe("unavailable");
    await probe.close();
  });

  it("leaves plain HTTP requests of the host server alone", async () => {
    const res = await fetch(url.replace("ws:", "http:"));
    expect(await res.text()).toBe("plain http still works");
  });
});
