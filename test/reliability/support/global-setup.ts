/** Names the figures file for this run and prints the summary line at the end. */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FIGURES_ENV, type Figures, summarize } from "./figures.js";

export default function setup(): () => void {
  const file = path.join(tmpdir(), `herald-reliability-${process.pid}-${Date.now()}.jsonl`);
  // Workers are forked after global setup and inherit the environment.
  process.env[FIGURES_ENV] = file;
  return () => {
    const lines: Figures[] = existsSync(file)
      ? readFileSync(file, "utf8")
          .split("\n")
          .filter((l) => l.trim().length > 0)
          .map((l) => JSON.parse(l) as Figures)
      : [];
    process.stdout.write(`\n${summarize(lines)}\n`);
    rmSync(file, { force: true });
  };
}
