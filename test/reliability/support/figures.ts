/**
 * The battery's figures. Every test file runs in its own worker, so each
 * appends JSON lines to one file (named by the global setup) and the global
 * teardown adds them up into the summary line.
 */
import { appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface Figures {
  /** Faults injected, by kind (kill9, sigterm, sigstop, postgres_restart, redis_kill...). */
  faults?: Record<string, number>;
  /** Bad inputs tried, by kind (token, cross_user, mass_assignment, fuzz_body, ws_frame...). */
  badInputs?: Record<string, number>;
  /** Notifications whose storage and delivery were checked. */
  checked?: number;
  /** Answered 2xx (or emitted) and then missing: must stay 0. */
  lost?: number;
  /** Shown to a user twice (after the client's de-duplication by id): must stay 0. */
  userDuplicates?: number;
  /** Frames carrying an id the client had already received (re-sent after a crash; reported). */
  wireDuplicates?: number;
}

export const FIGURES_ENV = "HERALD_RELIABILITY_FIGURES";

export function figuresFile(): string {
  return process.env[FIGURES_ENV] ?? path.join(tmpdir(), "herald-reliability-figures.jsonl");
}

export function record(figures: Figures): void {
  appendFileSync(figuresFile(), `${JSON.stringify(figures)}\n`);
}

export const fault = (kind: string, n = 1) => record({ faults: { [kind]: n } });
export const badInput = (kind: string, n = 1) => record({ badInputs: { [kind]: n } });

export function summarize(lines: Figures[]): string {
  const faults: Record<string, number> = {};
  const bad: Record<string, number> = {};
  let checked = 0;
  let lost = 0;
  let userDuplicates = 0;
  let wireDuplicates = 0;
  for (const f of lines) {
    for (const [k, v] of Object.entries(f.faults ?? {})) faults[k] = (faults[k] ?? 0) + v;
    for (const [k, v] of Object.entries(f.badInputs ?? {})) bad[k] = (bad[k] ?? 0) + v;
    checked += f.checked ?? 0;
    lost += f.lost ?? 0;
    userDuplicates += f.userDuplicates ?? 0;
    wireDuplicates += f.wireDuplicates ?? 0;
  }
  const list = (o: Record<string, number>) => {
    const total = Object.values(o).reduce((a, b) => a + b, 0);
    const parts = Object.entries(o).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`);
    return `${total}${parts.length ? ` (${parts.join(", ")})` : ""}`;
  };
  return (
    `reliability: faults injected ${list(faults)}; bad inputs tried ${list(bad)}; ` +
    `notifications checked ${checked}; lost ${lost}; user-visible duplicates ${userDuplicates}; wire duplicates ${wireDuplicates}`
  );
}
