/**
 * A half-open client: the TCP path is blackholed by a proxy (nothing flows,
 * nothing closes). The server must drop it within ping plus pong timeout,
 * bring its socket count back to the baseline, and keep later notifications
 * stored for it until it comes back.
 */
import { once } from "node:events";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { fault, record } from "./support/figures.js";
import { eventually } from "./support/processes.js";

const HEARTBEAT_MS = 300;

/** A TCP proxy whose connections can be blackholed: data is swallowed both ways, sockets stay open. */
async function startProxy(targetPort: number) {
  let blackholed = false;
  const pairs: net.Socket[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    pairs.push(client, upstream);
    client.on("data", (d) => !blackholed && upstream.write(d));
    upstream.on("data", (d) => !blackholed && client.write(d));
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    blackhole: () => {
      blackholed = true;
    },
    close: () => {
      for (const s of pairs) s.destroy();
      server.close();
    },
  };
}

describe("a half-open client (TCP blackholed by a proxy)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald({ realtime: { heartbeatMs: HEARTBEAT_MS } });
  });
  afterAll(() => h.stop());

  it("is dropped within ping plus pong timeout, and what comes later waits for its return", async () => {
    const baseline = h.herald.realtime.getLocalConnectionsCount();
    const proxy = await startProxy(Number(new URL(h.baseUrl).port));
    const token = await h.tokenFor("half-open-user");
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/ws?token=${encodeURIComponent(token)}`);
    await once(ws, "open");
    expect(h.herald.realtime.getLocalConnectionsCount()).toBe(baseline + 1);

    proxy.blackhole();
    fault("half_open");
    // One period to send the ping, one to notice the missing pong, plus scheduling slack.
    await eventually(() => h.herald.realtime.getLocalConnectionsCount() === baseline, 2 * HEARTBEAT_MS + 2_000, "half-open socket dropped");

    const created = await h.herald.notifications.createAndSendNotification({ userId: "half-open-user", type: "new_message", title: "While cut off", message: "m" });
    const [row] = await h.database.query<{ delivery_status: string }>("SELECT delivery_status FROM notifications WHERE id = $1", [created!.id]);
    expect(row!.delivery_status).toBe("pending");

    const back = new WebSocket(`${h.wsUrl}/ws?token=${encodeURIComponent(token)}`);
    const sync = await new Promise<{ notifications: { id: string }[] }>((resolve) =>
      back.on("message", (raw) => {
        const m = JSON.parse(String(raw)) as { type: string; notifications: { id: string }[] };
        if (m.type === "sync") resolve(m);
      }),
    );
    expect(sync.notifications.map((n) => n.id)).toContain(created!.id);
    record({ checked: 1, lost: 0 });
    back.close();
    ws.terminate();
    proxy.close();
  });
});
