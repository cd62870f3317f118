/**
 * What one user may take of a server (#15.6): a ceiling of connections per
 * user (the oldest closed with 4009), repeated syncs of one connection
 * coalesced while one runs, and client syncs per user rate-limited with an
 * `error` frame. Real `ws` clients against a server on a bare http.Server.
 */
import { randomUUID } from "node:crypto";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { MemoryBus } from "../../src/bus/index.js";
import { HeraldClient, type WebSocketConstructor } from "../../src/client/index.js";
import { loadConfig } from "../../src/config/index.js";
import { CloseCodes } from "../../src/protocol/index.js";
import { NotificationWebSocketServer, type RealtimeOptions } from "../../src/realtime/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { Probe, eventually } from "./helpers.js";

let h: TestHerald;
const stops: Array<() => Promise<void>> = [];

async function bare(options: Partial<RealtimeOptions>) {
  const http: Server = createServer();
  const bus = new MemoryBus();
  const server = new NotificationWebSocketServer(http, { ...h.herald.runtime, bus, instanceId: `limits-${randomUUID()}` }, options);
  await server.start();
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  stops.push(async () => {
    await server.close();
    await new Promise((resolve) => http.close(resolve));
    await bus.close();
  });
  return { server, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(async () => {
  for (const stop of stops) await stop();
  await h?.stop();
});

describe("per-user limits", () => {
  it("closes the oldest connection with 4009 when a user opens one more than the ceiling; other users are unaffected", async () => {
    const { server, url } = await bare({ maxConnectionsPerUser: 3 });
    const token = await h.tokenFor("u-many");
    const probes: Probe[] = [];
    for (let i = 0; i < 3; i++) {
      probes.push(await Probe.open(url, token));
      await probes.at(-1)!.next("sync");
    }
    const other = await Probe.open(url, await h.tokenFor("u-one"));
    await other.next("sync");
    probes.push(await Probe.open(url, token));
    expect(await probes[0]!.closed).toEqual({ code: CloseCodes.tooManyConnections, reason: "too many connections for this user" });
    await eventually(() => server.getLocalConnectionsCount(), (n) => n === 4);
    for (const p of probes.slice(1)) expect(p.ws.readyState).toBe(p.ws.OPEN);
    expect(other.ws.readyState).toBe(other.ws.OPEN);
    await Promise.all([...probes, other].map((p) => p.close()));
  });

  it("an SDK client closed with 4009 stays closed instead of knocking out the next oldest in a loop", async () => {
    const { server, url } = await bare({ maxConnectionsPerUser: 1 });
    const token = await h.tokenFor("u-tabs");
    const oldest = new HeraldClient({ url, token, WebSocket: WebSocket as unknown as WebSocketConstructor, initialDelayMs: 1, maxDelayMs: 5 });
    const states: string[] = [];
    oldest.on("state", (s) => states.push(s));
    const synced = oldest.once("sync");
    oldest.connect();
    await synced;
    const newest = await Probe.open(url, token);
    await newest.next("sync");
    await eventually(() => states.at(-1), (s) => s === "closed");
    // Had it reconnected, the newer tab would have been closed in turn.
    expect(states).not.toContain("reconnecting");
    expect(newest.ws.readyState).toBe(newest.ws.OPEN);
    expect(server.getLocalConnectionsCount()).toBe(1);
    await newest.close();
  });

  it("coalesces syncs sent while one runs: 20 at once cost far fewer reads, and the latest cursor is answered", async () => {
    const { url } = await bare({ syncBurst: 100 });
    const probe = await Probe.open(url, await h.tokenFor("u-coalesce"));
    await probe.next("sync");
    const last = 1_000_000_000_000;
    for (let i = 0; i < 19; i++) probe.send({ type: "sync", cursor: 0 });
    probe.send({ type: "sync", cursor: last });
    await probe.next("sync", (m) => m.cursor >= last);
    const answered = probe.of("sync").length - 1; // minus the connect-time page
    expect(answered).toBeLessThan(10);
    expect(probe.of("error")).toEqual([]);
    await probe.close();
  });

  it("limits client syncs per user across connections with an error frame, not a silent drop", async () => {
    const { url } = await bare({ syncsPerSecond: 0.001, syncBurst: 3 });
    const token = await h.tokenFor("u-sync-flood");
    const [a, b] = [await Probe.open(url, token), await Probe.open(url, token)];
    await Promise.all([a.next("sync"), b.next("sync")]);
    // One at a time, so none is coalesced: each one is a read the bucket must pay for.
    for (const [i, p] of [a, b, a].entries()) {
      p.send({ type: "sync", cursor: i + 1 });
      await p.next("sync", (m) => m.cursor >= i + 1);
    }
    b.send({ type: "sync", cursor: 10 });
    const refused = await b.next("error");
    expect(refused.code).toBe("sync_rate_limited");
    expect(b.of("sync").length).toBe(2); // connect-time page + one
    // The user's other messages still work.
    b.send({ type: "ping" });
    await b.next("pong");
    await Promise.all([a.close(), b.close()]);
  });

  it("takes the ceiling and the presence heartbeat from the environment", async () => {
    expect(() => loadConfig({ HERALD_MAX_CONNECTIONS_PER_USER: "0" })).toThrow(/HERALD_MAX_CONNECTIONS_PER_USER/);
    expect(loadConfig({}).realtime).toEqual({});
    const custom = await startTestHerald({ env: { HERALD_MAX_CONNECTIONS_PER_USER: "2", HERALD_PRESENCE_HEARTBEAT_MS: "500" } });
    stops.push(() => custom.stop());
    expect(custom.herald.realtime.options).toMatchObject({ maxConnectionsPerUser: 2, presenceHeartbeatMs: 500 });
  });
});
