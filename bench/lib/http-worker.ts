/**
 * An HTTP load thread: POSTs `count` JSON bodies with `concurrency` requests
 * in flight over keep-alive connections; each body gets `data.t`, the send
 * time, so receivers can measure create-to-deliver latency.
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
}

const job = workerData as Job;
const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
const url = new URL(job.url);
const now = () => performance.timeOrigin + performance.now();
const elu0 = performance.eventLoopUtilization();

function post(body: string): Promise<{ status: number; ms: number }> {
  const started = now();
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
const t0 = now();
await Promise.all(Array.from({ length: job.concurrency }, lane));
const elapsedMs = now() - t0;
agent.destroy();
parentPort!.postMessage({ statuses, latencies, elapsedMs, utilization: performance.eventLoopUtilization(elu0).utilization });
