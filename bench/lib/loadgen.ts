/** Drives loadgen-worker threads: connect clients, await deliveries, collect figures. */
import type { Worker } from "node:worker_threads";
import { tsWorker } from "./ts-worker.js";

export interface LoadStats {
  received: number;
  duplicates: number;
  distinct: number;
  /** `sync` messages received (one per connection after connect). */
  syncs: number;
  latencies: number[];
  /** Highest event-loop utilisation among the generator threads (0..1). */
  utilization: number;
}

class Thread {
  private readonly worker: Worker;
  private queue: ((m: { ok: boolean; error?: string }) => void)[] = [];
  constructor() {
    this.worker = tsWorker(new URL("./loadgen-worker.ts", import.meta.url));
    this.worker.on("message", (m) => this.queue.shift()?.(m));
  }
  call<T>(message: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.queue.push((m) => (m.ok ? resolve(m as T) : reject(new Error(m.error))));
      this.worker.postMessage(message);
    });
  }
  terminate() {
    return this.worker.terminate();
  }
}

export class LoadGenerator {
  private constructor(private readonly threads: Thread[]) {}

  static async start(threads = 2): Promise<LoadGenerator> {
    return new LoadGenerator(Array.from({ length: threads }, () => new Thread()));
  }

  /** Opens one client per URL, spread over the threads. */
  async connect(urls: string[], ack = true): Promise<void> {
    const shares = this.threads.map((_, i) => urls.filter((_, j) => j % this.threads.length === i));
    await Promise.all(this.threads.map((t, i) => t.call({ cmd: "connect", urls: shares[i], ack })));
  }

  async reset(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.call({ cmd: "reset" })));
  }

  async stats(withLatencies = true): Promise<LoadStats> {
    const all = await Promise.all(this.threads.map((t) => t.call<LoadStats>({ cmd: "stats", withLatencies })));
    return {
      received: all.reduce((s, a) => s + a.received, 0),
      duplicates: all.reduce((s, a) => s + a.duplicates, 0),
      syncs: all.reduce((s, a) => s + a.syncs, 0),
      distinct: all.reduce((s, a) => s + a.distinct, 0),
      latencies: all.flatMap((a) => a.latencies),
      utilization: Math.max(...all.map((a) => a.utilization)),
    };
  }

  /** Polls until `total` notifications arrived or the deadline passes; returns the stats. */
  async waitFor(total: number, timeoutMs = 60_000): Promise<LoadStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats(false);
      if (s.received >= total || Date.now() > deadline) return this.stats(true);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Polls until `predicate(stats)` holds or the deadline passes. */
  async until(predicate: (s: LoadStats) => boolean, timeoutMs = 60_000): Promise<LoadStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats(false);
      if (predicate(s) || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Reopens every client dropped by drop(), all at once. */
  async reconnect(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.call({ cmd: "reconnect" })));
  }

  async drop(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.call({ cmd: "drop" })));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.call({ cmd: "close" }).catch(() => undefined)));
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}
