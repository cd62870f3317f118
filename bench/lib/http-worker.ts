/**
 * An HTTP load thread: POSTs `count` JSON bodies with `concurrency` requests
 * in flight over keep-alive connections; each body gets `data.t`, the send
 * time, so receivers can measure create-to-deliver latency.
 *
 * With `ratePerSecond`, the load is open instead: body i is due at
 * t0 + i / rate whatever the answers so far (up to `concurrency` connections,
 * further requests wait for one), and its `data.t` and latency start at that
 * due time, so a server that falls behind is charged for the wait
 * (no coordinated omission).
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";

interface Job {
  url: string;
  headers: Record<string, string>;
  /** Bodies to send, in order; `{{t}}` is replaced by the send time. */
  bodies: string[];
  concurrency: number;
  ratePerSecond?: number;
}

const job = workerData as Job;
const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
const url = new URL(job.url);
const now = () => performance.timeOrigin + performance.now();
const elu0 = performance.eventLoopUtilization();

function post(body: string, due?: number): Promise<{ status: number; ms: number }> {
  const started = due ?? now();
  const payload = body.replace('"{{t}}"', String(started));
  return new Promise((resolve) => {
    const req = http.request(
      { hostname: url.hostname, port: url.port, path: url.pathname, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...job.headers } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: now() - started }));
      },
    );
    req.on("error", () => resolve({ status: 0, ms: now() - started }));
    req.end(payload);
  });
}

let next = 0;
const statuses: Record<string, number> = {};
const latencies: number[] = [];
async function lane() {
  while (next < job.bodies.length) {
    const body = job.bodies[next++]!;
    const r = await post(body);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    latencies.push(r.ms);
  }
}
/** Sends each body at its due time (open load); resolves once every answer came. */
function paced(rate: number): Promise<void> {
  const interval = 1000 / rate;
  const start = now();
  let inFlight = 0;
  return new Promise((resolve) => {
    if (job.bodies.length === 0) return resolve();
    const tick = () => {
      const t = now();
      while (next < job.bodies.length && start + next * interval <= t) {
        const due = start + next * interval;
        const body = job.bodies[next++]!;
        inFlight++;
        void post(body, due).then((r) => {
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          latencies.push(r.ms);
          if (--inFlight === 0 && next === job.bodies.length) resolve();
        });
      }
      if (next < job.bodies.length) setTimeout(tick, Math.max(0, start + next * interval - now()));
    };
    tick();
  });
}

const t0 = now();
if (job.ratePerSecond) await paced(job.ratePerSecond);
else await Promise.all(Array.from({ length: job.concurrency }, lane));
const elapsedMs = now() - t0;
agent.destroy();
parentPort!.postMessage({ statuses, latencies, elapsedMs, utilization: performance.eventLoopUtilization(elu0).utilization });
