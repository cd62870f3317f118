/**
 * One row per benchmark case: Herald's figure, the baseline measured in the
 * same run, the median of the per-round ratios and their spread. A row whose
 * load generator was saturated is marked invalid.
 */
import { execSync } from "node:child_process";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { median, spread } from "./stats.js";

export interface CaseResult {
  name: string;
  unit: string;
  /** One figure per round, Herald. */
  herald: number[];
  /** One figure per round, the baseline (same length), or [] for absolute cases. */
  baseline: number[];
  baselineName: string;
  /** true when larger is better (throughput), false for latency and memory. */
  higherIsBetter: boolean;
  goal: string;
  /** Evaluates the goal on the median ratio (or median figure for absolute cases). */
  goalMet?: boolean;
  saturated: boolean;
  /** Lost messages or errors: the run fails. */
  errors: string[];
  note?: string;
}

const fmt = (n: number) =>
  !Number.isFinite(n) ? "-" : Math.abs(n) >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2);

export function ratios(r: CaseResult): number[] {
  return r.herald.map((h, i) => (r.baseline[i] ? h / r.baseline[i]! : Number.NaN));
}

export function renderTable(results: CaseResult[]): string {
  const header = ["case", "herald", "baseline", "baseline is", "ratio (median)", "spread", "goal", "met", "load gen"];
  const rows = results.map((r) => {
    const rs = ratios(r);
    return [
      r.name,
      `${fmt(median(r.herald))} ${r.unit}`,
      r.baseline.length ? `${fmt(median(r.baseline))} ${r.unit}` : "-",
      r.baselineName,
      r.baseline.length ? fmt(median(rs)) : "-",
      r.baseline.length ? `${(spread(rs) * 100).toFixed(0)}%` : `${(spread(r.herald) * 100).toFixed(0)}%`,
      r.goal,
      r.errors.length ? "ERROR" : r.goalMet === undefined ? "?" : r.goalMet ? "yes" : "no",
      r.saturated ? "SATURATED (invalid)" : "ok",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

export function appendResults(title: string, command: string, table: string, notes: string[] = []): void {
  const file = new URL("../RESULTS.md", import.meta.url);
  if (!existsSync(file)) writeFileSync(file, "# Benchmark results\n\nNewest last. Each run records its date, commit and command.\n");
  let commit = "unknown";
  try {
    commit = execSync("git rev-parse --short HEAD", { encoding: "utf8" }).trim();
  } catch {}
  const when = new Date().toISOString().replace("T", " ").slice(0, 16);
  appendFileSync(
    file,
    `\n## ${title}: ${when} UTC, commit ${commit}\n\nCommand: \`${command}\`\n\n${table}\n${notes.length ? `\n${notes.map((n) => `- ${n}`).join("\n")}\n` : ""}`,
  );
}
