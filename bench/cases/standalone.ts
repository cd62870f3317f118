/**
 * The standalone benches (bench/realtime.ts, bench/broadcast.ts,
 * bench/analytics.ts) as cases of `npm run bench`: each runs in its own
 * process (so its heap figures and event loop are not shared with the other
 * cases), alternates Herald and its baseline itself, and prints a markdown
 * table; its rows are read back into `CaseResult`s here.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { BenchOptions } from "../lib/context.js";
import type { CaseResult } from "../lib/report.js";
import { median } from "../lib/stats.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

function runScript(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--conditions=herald-source", "--import", "tsx", script, ...args, "--no-write"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => {
      err += d;
      process.stderr.write(d);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}: ${err.slice(-2000)}`));
      // The script's notes (data sizes, load and rebuild times) do not fit the table: keep them in the log.
      for (const note of out.split("\n").filter((l) => l.startsWith("- "))) process.stderr.write(`${script} ${note}\n`);
      resolve(out);
    });
  });
}

/** Markdown table rows as arrays of trimmed cells (header and separator skipped). */
function tableRows(out: string): string[][] {
  return out
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| ---") && !l.startsWith("| case"))
    .map((l) => l.slice(1, -1).split(" | ").map((c) => c.trim()));
}

const num = (s: string) => Number(s.replace(/,/g, ""));
/** "50,000 (48,000, 50,000, 52,000)" -> the rounds; "5.1 KiB" -> [5.1]. */
function figures(cell: string): number[] {
  const list = /\(([\d.,\s]+)\)/.exec(cell);
  if (list) return list[1]!.split(", ").map(num);
  const first = /-?[\d,]*\d(\.\d+)?/.exec(cell);
  return first ? [num(first[0])] : [];
}

/** The median of the per-round ratios, as the report shows and judges it (rounds are listed in the same order on both sides). */
const medianRatio = (herald: number[], baseline: number[]) => median(herald.map((h, i) => h / baseline[i]!));

function failed(name: string, err: unknown): CaseResult {
  return { name, unit: "", herald: [], baseline: [], baselineName: "-", higherIsBetter: true, goal: "-", saturated: false, errors: [String(err instanceof Error ? err.message : err)] };
}

/** Broadcast deliveries/s to 1,000 and 5,000 clients and memory per idle connection, vs bare ws. */
export async function realtimeCases(o: BenchOptions): Promise<CaseResult[]> {
  let out: string;
  try {
    out = await runScript("bench/realtime.ts", ["--sizes", o.quick ? "500" : "1000,5000", "--rounds", String(o.rounds)]);
  } catch (err) {
    return [failed("broadcast deliveries/s (realtime)", err)];
  }
  const limited = /generator may have been the limit/;
  // Per size: backpressured sends and generator utilisation, the figures behind `saturated`.
  const loadNotes = out.split("\n").filter((l) => /^- [\d,]+ clients: /.test(l)).map((l) => l.slice(2));
  return tableRows(out).map(([name, h, b]) => {
    const memory = name!.includes("per idle connection");
    const herald = figures(h!);
    const baseline = figures(b!);
    const ratio = medianRatio(herald, baseline);
    const sizeNote = loadNotes.find((l) => name!.includes(l.split(":")[0]!));
    const saturated = limited.test(sizeNote ?? out);
    return memory
      ? { name: name!, unit: "KiB", herald, baseline, baselineName: "bare ws", higherIsBetter: false, goal: "<= 1.5x", goalMet: ratio > 0 && ratio <= 1.5, saturated: false, errors: [] }
      : {
          name: name!,
          unit: "deliveries/s",
          herald,
          baseline,
          baselineName: "bare ws, one pre-serialized buffer",
          higherIsBetter: true,
          goal: ">= 0.8",
          goalMet: ratio >= 0.8,
          saturated,
          errors: [],
          note: `counted on the server side (bytes handed to the kernel by the server's sockets, checked against the frames expected; clients paused, not reading, in the window); server on the main thread, clients in 2 worker threads. ${sizeNote ?? ""}`.trim(),
        };
  });
}

/** Broadcast to the whole directory (100,000 users; 10,000 in --quick) vs one INSERT ... SELECT. */
export async function directoryBroadcast(o: BenchOptions): Promise<CaseResult[]> {
  let out: string;
  try {
    out = await runScript("bench/broadcast.ts", ["--users", o.quick ? "10000" : "100000", "--rounds", String(o.rounds)]);
  } catch (err) {
    return [failed("broadcast to the directory", err)];
  }
  const row = tableRows(out).find(([name]) => name!.startsWith("broadcast to"));
  if (!row) return [failed("broadcast to the directory", "no result row")];
  const herald = figures(row[1]!);
  const baseline = figures(row[2]!);
  const ratio = medianRatio(herald, baseline);
  const results: CaseResult[] = [{ name: row[0]!.split(":")[0]!, unit: "ms", herald, baseline, baselineName: "INSERT ... SELECT FROM users", higherIsBetter: false, goal: "<= 1.5x", goalMet: ratio <= 1.5, saturated: false, errors: [] }];
  // The same rounds against the floor that also writes the e-mail queue row each default-settings recipient gets.
  const withQueue = tableRows(out).find(([name]) => name!.startsWith("same, against the floor plus"));
  if (withQueue) {
    results.push({ name: "  same, against the floor plus its e-mail queue rows", unit: "ms", herald, baseline: figures(withQueue[2]!), baselineName: "both INSERT ... SELECTs", higherIsBetter: false, goal: "(reported)", saturated: false, errors: [] });
  }
  return results;
}

/** Analytics ingest vs raw multi-row INSERT, and metric-query p99 at 10M events (200k in --quick). */
export async function analyticsCases(o: BenchOptions): Promise<CaseResult[]> {
  let out: string;
  const events = o.quick ? 100_000 : 10_000_000;
  try {
    out = await runScript("bench/analytics.ts", ["--events", String(events), "--ingest", o.quick ? "20000" : "500000", "--samples", o.quick ? "10" : "40"]);
  } catch (err) {
    return [failed("analytics", err)];
  }
  const results: CaseResult[] = [];
  for (const [name, h, b] of tableRows(out)) {
    if (name!.startsWith("**")) continue;
    if (name!.startsWith("ingest")) {
      const herald = figures(h!);
      const baseline = figures(b!);
      results.push({ name: `analytics ${name}`, unit: "events/s", herald, baseline, baselineName: "multi-row INSERT, batch 1,000", higherIsBetter: true, goal: ">= 0.5", goalMet: medianRatio(herald, baseline) >= 0.5, saturated: false, errors: [] });
      continue;
    }
    // "p50 / p99": absolute goal on p99 (no baseline in the issue; the COUNT(DISTINCT) figure stays in the note).
    const [, p99] = h!.split(" / ").map(num);
    const limit = /overview|trends|top /i.test(name!) ? 200 : 50;
    results.push({ name: `metric p99 at ${events.toLocaleString("en-US")} events: ${name}`, unit: "ms", herald: [p99!], baseline: [], baselineName: "none (absolute)", higherIsBetter: false, goal: `p99 <= ${limit} ms`, goalMet: p99! <= limit, saturated: false, errors: [], note: `p50 / p99 ${h}; COUNT(DISTINCT) ${b}` });
  }
  return results.length ? results : [failed("analytics", "no result rows")];
}
