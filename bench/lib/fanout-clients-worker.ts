/**
 * Load-generator thread for bench/realtime.ts: holds many WebSocket clients
 * (perMessageDeflate off) and only counts notification frames by their
 * prefix, without parsing, so the clients cost as little as possible and the
 * server is what gets measured. Reports when an expected count is reached.
 * `pause` stops every client reading (the frames wait in the kernel's socket
 * buffers) while the server's timed window runs; `resume` lets them read and
 * answers with this thread's event-loop utilisation over the paused window.
 *
 * A paused Node stream still reads until its buffer reaches the high-water
 * mark (16 KiB on Node 20: most of a round's frames), so `pause` also stops
 * the socket's handle reading: otherwise the "paused" clients copy the frames
 * out of the kernel during the timed window and take CPU from the server.
 */
import { performance } from "node:perf_hooks";
import { parentPort } from "node:worker_threads";
import WebSocket from "ws";

type Command =
  | { cmd: "connect"; urls: string[]; protocols?: string[][] }
  | { cmd: "expect"; count: number }
  | { cmd: "pause" }
  | { cmd: "resume" }
  | { cmd: "close" };

const PREFIX = Buffer.from('{"type":"notification"');
const sockets: WebSocket[] = [];
let received = 0;
let target = Number.POSITIVE_INFINITY;
let ready = 0;
let elu = performance.eventLoopUtilization();
let pausedElu = performance.eventLoopUtilization();

function onMessage(raw: WebSocket.RawData): void {
  const buf = raw as Buffer;
  if (buf.length < PREFIX.length || buf.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) !== 0) {
    // unread_count / sync on connect: the connection is ready once its sync arrived.
    if (buf.includes('"type":"sync"')) ready++;
    return;
  }
  received++;
  if (received === target) {
    const u = performance.eventLoopUtilization(elu);
    parentPort!.postMessage({ ok: true, at: performance.timeOrigin + performance.now(), utilization: u.utilization });
    target = Number.POSITIVE_INFINITY;
  }
}

/** The net.Socket's handle, whose reading `Readable.pause` leaves on until the stream's buffer is full. */
type Handle = { reading: boolean; readStop(): number; readStart(): number };
const handleOf = (ws: WebSocket) => (ws as unknown as { _socket?: { _handle?: Handle | null } })._socket?._handle ?? undefined;
function stopReading(ws: WebSocket): void {
  const handle = handleOf(ws);
  if (handle?.reading) {
    handle.reading = false;
    handle.readStop();
  }
}
function startReading(ws: WebSocket): void {
  const handle = handleOf(ws);
  if (handle && !handle.reading) {
    handle.reading = true;
    handle.readStart();
  }
}

function connect(url: string, protocols?: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    ws.on("message", onMessage);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

parentPort!.on("message", async (m: Command) => {
  try {
    if (m.cmd === "connect") {
      for (let i = 0; i < m.urls.length; i += 200) {
        const batch = await Promise.all(m.urls.slice(i, i + 200).map((u, k) => connect(u, m.protocols?.[i + k])));
        sockets.push(...batch);
      }
      parentPort!.postMessage({ ok: true, connected: sockets.length });
    } else if (m.cmd === "expect") {
      received = 0;
      target = m.count;
      elu = performance.eventLoopUtilization();
      parentPort!.postMessage({ ok: true, ready });
    } else if (m.cmd === "pause") {
      for (const s of sockets) {
        s.pause();
        stopReading(s);
      }
      pausedElu = performance.eventLoopUtilization();
      parentPort!.postMessage({ ok: true });
    } else if (m.cmd === "resume") {
      const u = performance.eventLoopUtilization(pausedElu);
      for (const s of sockets) {
        startReading(s);
        s.resume();
      }
      parentPort!.postMessage({ ok: true, utilization: u.utilization });
    } else if (m.cmd === "close") {
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise((r) => {
              if (s.readyState === WebSocket.CLOSED) r(null);
              else {
                s.once("close", r);
                s.close();
              }
            }),
        ),
      );
      sockets.length = 0;
      ready = 0;
      parentPort!.postMessage({ ok: true });
    }
  } catch (err) {
    parentPort!.postMessage({ ok: false, error: String(err) });
  }
});
