/** Prometheus instruments of the WebSocket server, shared when several servers use one registry. */
import { Counter, Gauge, type Registry } from "prom-client";

export interface RealtimeMetrics {
  connections: Gauge;
  messagesSent: Counter;
  messagesReceived: Counter;
  /** label `reason`: malformed_json, unknown_type, invalid_message, rate_limited, slow_consumer, unauthorized... */
  errors: Counter<"reason">;
}

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function realtimeMetrics(registry: Registry): RealtimeMetrics {
  const registers = [registry];
  return {
    connections: getOrCreate(registry, "herald_ws_connections", () => new Gauge({ name: "herald_ws_connections", help: "Open WebSocket connections on this instance", registers })),
    messagesSent: getOrCreate(registry, "herald_ws_messages_sent_total", () => new Counter({ name: "herald_ws_messages_sent_total", help: "Messages written to WebSocket clients", registers })),
    messagesReceived: getOrCreate(registry, "herald_ws_messages_received_total", () => new Counter({ name: "herald_ws_messages_received_total", help: "Messages received from WebSocket clients", registers })),
    errors: getOrCreate(registry, "herald_ws_errors_total", () => new Counter({ name: "herald_ws_errors_total", help: "WebSocket protocol errors and forced disconnects, by reason", labelNames: ["reason"] as const, registers })),
  };
}
