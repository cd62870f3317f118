import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Starts a worker thread running a TypeScript file. Node 20 does not pass the
 * parent's `--import tsx` hooks to workers, so the thread registers tsx itself
 * before importing the file.
 */
export function tsWorker(file: URL, options: Omit<WorkerOptions, "eval"> = {}): Worker {
  const source = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(file.href)}); });`;
  return new Worker(source, { ...options, eval: true });
}
