/**
 * `npm run bench [-- --quick]`: every case against its baseline, measured in
 * the same run, alternating at least three times, printed as one table and
 * appended to bench/RESULTS.md. Needs DATABASE_URL (and REDIS_URL for the
 * cluster case). Exits non-zero on errors or lost messages, never on timing.
 */
import { parseArgs } from "node:util";
import { createToDeliver } from "./cases/create-to-deliver.js";
import { persistOffline } from "./cases/persist-offline.js";
import { reconnectCases } from "./cases/reconnect.js";
import { cluster } from "./cases/cluster.js";
import { cacheInvalidation } from "./cases/cache-invalidation.js";
import { outOfAppLatency } from "./cases/out-of-app-latency.js";
import { emailDrain } from "./cases/email-drain.js";
import { inboxSize } from "./cases/inbox-size.js";
import { analyticsCases, directoryBroadcast, realtimeCases } from "./cases/standalone.js";
import type { BenchOptions } from "./lib/context.js";
import { type CaseResult, appendResults, renderTable } from "./lib/report.js";
import { describeMachine } from "./lib/machine.js";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, only: { type: "string" }, "no-write": { type: "boolean" } } });
const options: BenchOptions = { quick: Boolean(values.quick), rounds: 3 };

const cases: [string, (o: BenchOptions) => Promise<CaseResult[]>][] = [
  ["realtime", realtimeCases],
  ["create-to-deliver", createToDeliver],
  ["persist-offline", persistOffline],
  ["reconnect", reconnectCases],
  ["cluster", cluster],
  ["cache-invalidation", cacheInvalidation],
  ["broadcast-directory", directoryBroadcast],
  ["analytics", analyticsCases],
  ["inbox-size", inboxSize],
  ["out-of-app-latency", outOfAppLatency],
  ["email-drain", emailDrain],
];

const results: CaseResult[] = [];
const started = Date.now();
for (const [name, run] of cases) {
  if (values.only && !name.includes(values.only)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  try {
    results.push(...(await run(options)));
  } catch (err) {
    results.push({ name, unit: "", herald: [], baseline: [], baselineName: "-", higherIsBetter: true, goal: "-", saturated: false, errors: [String(err instanceof Error ? err.stack : err)] });
  }
}
const table = renderTable(results);
// Each case's own note (what ran where, on how many threads), under the table.
const notes = results.filter((r) => r.note).map((r) => `${r.name.trim()}: ${r.note}`);
process.stdout.write(`\n${table}\n\n${notes.map((n) => `- ${n}\n`).join("")}${options.quick ? "quick" : "full"} run, ${options.rounds} rounds per case, ${((Date.now() - started) / 1000).toFixed(0)} s\n${describeMachine()}\n`);
const errors = results.flatMap((r) => r.errors.map((e) => `${r.name}: ${e}`));
for (const e of errors) process.stderr.write(`ERROR ${e}\n`);
if (!values["no-write"] && !options.quick) {
  appendResults("npm run bench", `DATABASE_URL=... REDIS_URL=... npm run bench${values.only ? ` -- --only ${values.only}` : ""}`, table, [...notes, describeMachine()]);
}
process.exit(errors.length ? 1 : 0);
