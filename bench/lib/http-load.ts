import { tsWorker } from "./ts-worker.js";

export interface HttpLoadResult {
  statuses: Record<string, number>;
  latencies: number[];
  elapsedMs: number;
  utilization: number;
}

/** Runs one http-worker thread to completion (closed load of `concurrency`, or open at `ratePerSecond`). */
export function httpLoad(job: { url: string; headers?: Record<string, string>; bodies: string[]; concurrency: number; ratePerSecond?: number }): Promise<HttpLoadResult> {
  return new Promise((resolve, reject) => {
    const w = tsWorker(new URL("./http-worker.ts", import.meta.url), { workerData: { headers: {}, ...job } });
    w.once("message", (m: HttpLoadResult) => {
      resolve(m);
      void w.terminate();
    });
    w.once("error", reject);
  });
}
