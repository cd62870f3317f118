/**
 * Small shared capabilities passed into every component: a clock (so tests
 * can move time), a logger (pino), and a Prometheus registry.
 */
import pino from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  private current: number;
  constructor(start: Date | string | number = Date.now()) {
    this.current = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.current);
  }
  set(t: Date | string | number): void {
    this.current = new Date(t).getTime();
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

export type Logger = pino.Logger;

export function createLogger(level: string = "info"): Logger {
  return pino({ level, base: { service: "herald" } });
}

/** A logger that writes nothing: the default for library use and tests. */
export const silentLogger: Logger = pino({ level: "silent" });

export function createMetricsRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}
