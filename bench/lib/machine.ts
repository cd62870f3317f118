/**
 * What a benchmark can say about the machine it ran on: cores, memory, Node,
 * and the 1-minute load average sampled through the run. A shared machine's
 * figures mean little without it, and a fixed caveat says nothing.
 */
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";

const loadSamples: number[] = [loadavg()[0]!];
// Sampling starts when a bench imports this module; unref so it never keeps a run alive.
setInterval(() => loadSamples.push(loadavg()[0]!), 5_000).unref();

export function describeMachine(): string {
  loadSamples.push(loadavg()[0]!);
  const min = Math.min(...loadSamples);
  const max = Math.max(...loadSamples);
  const model = cpus()[0]?.model.trim() ?? "unknown CPU";
  return (
    `Machine: ${availableParallelism()} cores (${model}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
    `1-minute load average ${min.toFixed(1)}-${max.toFixed(1)} over the run (${loadSamples.length} samples)` +
    `${max > availableParallelism() ? " (above the core count: the run's own load generators count in it, and any other work)" : ""}.`
  );
}
