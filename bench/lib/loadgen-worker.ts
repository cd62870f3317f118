/**
 * A load-generator thread: holds many WebSocket clients, counts the
 * notifications they receive (and their latency when the payload carries a
 * send time in `data.t`), and reports its own event-loop utilisation so the
 * run can tell when the generator, not the server, was the limit.
 */
import { performance } from "node:perf_hooks";
import { parentPort } from "node:worker_threads";
import WebSocket from "ws";

type Command =
  | { cmd: "connect"; urls: string[]; ack: boolean; protocols?: string[] }
  | { cmd: "reset" }
  | { cmd: "stats"; withLatencies?: boolean }
  | { cmd: "drop" }
  | { cmd: "reconnect" }
  | { cmd: "close" };

const sockets: WebSocket[] = [];
let urls: string[] = [];
let lastAck = false;
let received = 0;
let latencies: number[] = [];
let ids = new Map<string, number>();
let duplicates = 0;
let syncs = 0;
let elu = performance.eventLoopUtilization();
const now = () => performance.timeOrigin + performance.now();

/** `ack`: this client acks what it receives (Herald's clients); relays' clients do not. */
function onMessage(ws: WebSocket, ack: boolean, raw: WebSocket.RawData) {
  const text = raw.toString();
  if (!text.startsWith('{"type":"notification"') && !text.startsWith('{"type":"sync"')) return;
  const msg = JSON.parse(text) as { type: string; notification?: { id: string; data?: { t?: number } }; notifications?: { id: string; data?: { t?: number } }[] };
  if (msg.type === "sync") syncs++;
  const list = msg.type === "sync" ? (msg.notifications ?? []) : msg.notification ? [msg.notification] : [];
  const t = now();
  for (const n of list) {
    received++;
    const seen = ids.get(n.id) ?? 0;
    if (seen > 0) duplicates++;
    ids.set(n.id, seen + 1);
    if (n.data?.t) latencies.push(t - n.data.t);
  }
  if (!ack || list.length === 0) return;
  // As the SDK does: a sync page acked in one message, a live push at once.
  if (msg.type === "sync") ws.send(JSON.stringify({ type: "ack", ids: list.map((n) => n.id) }));
  else ws.send(`{"type":"ack","id":"${list[0]!.id}"}`);
}

function connect(url: string, ack: boolean, protocols?: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    ws.on("message", (raw) => onMessage(ws, ack, raw));
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

parentPort!.on("message", async (m: Command) => {
  try {
    if (m.cmd === "connect") {
      // reconnect() reopens the last set connected, with its ack setting.
      urls = m.urls;
      lastAck = m.ack;
      for (let i = 0; i < m.urls.length; i += 100) {
        const batch = await Promise.all(m.urls.slice(i, i + 100).map((u) => connect(u, m.ack, m.protocols)));
        sockets.push(...batch);
      }
      parentPort!.postMessage({ ok: true, connected: sockets.length });
    } else if (m.cmd === "reset") {
      received = 0;
      duplicates = 0;
      syncs = 0;
      latencies = [];
      ids = new Map();
      elu = performance.eventLoopUtilization();
      parentPort!.postMessage({ ok: true });
    } else if (m.cmd === "stats") {
      const u = performance.eventLoopUtilization(elu);
      parentPort!.postMessage({ ok: true, received, duplicates, syncs, distinct: ids.size, latencies: m.withLatencies ? latencies : [], utilization: u.utilization });
    } else if (m.cmd === "drop") {
      for (const s of sockets) s.terminate();
      sockets.length = 0;
      parentPort!.postMessage({ ok: true });
    } else if (m.cmd === "reconnect") {
      // Everyone at once, as after a load balancer restart.
      sockets.push(...(await Promise.all(urls.map((u) => connect(u, lastAck)))));
      parentPort!.postMessage({ ok: true, connected: sockets.length });
    } else if (m.cmd === "close") {
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((r) => {
              if (s.readyState === WebSocket.CLOSED) r();
              else {
                s.once("close", () => r());
                s.close();
              }
            }),
        ),
      );
      sockets.length = 0;
      parentPort!.postMessage({ ok: true });
    }
  } catch (err) {
    parentPort!.postMessage({ ok: false, error: String(err) });
  }
});
