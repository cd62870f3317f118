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

/** A write error that says the reader is gone for good: a closed pipe (EPIPE) or a hung-up terminal (EIO). */
export function isReaderGone(err: NodeJS.ErrnoException): boolean {
  return err.code === "EPIPE" || err.code === "EIO";
}

export function createLogger(level: string = "info"): Logger {
  const options = { level, base: { service: "herald" } };
  // An embedder that wrapped process.stdout.write (to capture or ship the output) keeps it, as pino does.
  if (process.stdout.write !== Object.getPrototypeOf(process.stdout).write) return pino(options, process.stdout);
  // pino's default destination, built here to add what it lacks: it stops writing on EPIPE only. On a
  // hung-up terminal (EIO) the error went unhandled and pino's flush at exit retried the write forever,
  // so `npm start` in a closed terminal never ended (reproduced in a pseudo-terminal, 2026-12-02).
  // minLength 1 writes each line at once, as pino's default (0) does, but makes flush(cb) wait for the
  // write in flight: with 0 it calls back at once (npm start flushes before it dies by SIGHUP).
  const stdout = pino.destination({ fd: 1, sync: false, minLength: 1 });
  stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (!isReaderGone(err)) throw err;
    // What pino does on EPIPE: nothing more is written, buffered lines included.
    const noop = () => undefined;
    Object.assign(stdout, { write: () => true, flush: (cb?: () => void) => cb?.(), flushSync: noop, end: noop, destroy: noop });
  });
  return pino(options, stdout);
}

/** A logger that writes nothing: the default for library use and tests. */
export const silentLogger: Logger = pino({ level: "silent" });

export function createMetricsRegistry(withDefaults = true): Registry {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}
