/**
 * Queue and channel metrics on the Prometheus registry: queue depth by state
 * (read from the table at scrape time: the table is the truth, shared by all
 * instances), sends and failures per channel (this process's counters).
 */
import { Counter, Gauge, type Registry } from "prom-client";

export interface ChannelMetrics {
  sends: Counter<"channel">;
  failures: Counter<"channel" | "kind">;
  gaveUp: Counter<"channel">;
}

type DepthSource = () => Promise<{ status: string; count: number }[]>;
const depthSources = new WeakMap<Registry, DepthSource>();

export function channelMetrics(registry: Registry, depth: DepthSource): ChannelMetrics {
  // The last worker built on a registry answers the depth gauge (one per process in practice).
  depthSources.set(registry, depth);
  const existing = registry.getSingleMetric("herald_channel_sends_total") as Counter<"channel"> | undefined;
  if (existing) {
    return {
      sends: existing,
      failures: registry.getSingleMetric("herald_channel_failures_total") as Counter<"channel" | "kind">,
      gaveUp: registry.getSingleMetric("herald_queue_failed_total") as Counter<"channel">,
    };
  }
  new Gauge({
    name: "herald_queue_depth",
    help: "Out-of-app queue rows not yet sent, by state (held in an hourly bundle, pending, processing)",
    labelNames: ["status"],
    registers: [registry],
    async collect() {
      const source = depthSources.get(registry);
      if (!source) return;
      try {
        const rows = await source();
        this.reset();
        for (const status of ["held", "pending", "processing"]) {
          this.set({ status }, rows.find((r) => r.status === status)?.count ?? 0);
        }
      } catch {
        // Database unreachable during a scrape: keep the last values rather than fail /metrics.
      }
    },
  });
  return {
    sends: new Counter({ name: "herald_channel_sends_total", help: "Out-of-app messages accepted by the provider, per channel", labelNames: ["channel"], registers: [registry] }),
    failures: new Counter({
      name: "herald_channel_failures_total",
      help: "Out-of-app send attempts that failed, per channel and kind (retryable, permanent)",
      labelNames: ["channel", "kind"],
      registers: [registry],
    }),
    gaveUp: new Counter({ name: "herald_queue_failed_total", help: "Queue rows that gave up into the failed state, per channel", labelNames: ["channel"], registers: [registry] }),
  };
}
