/**
 * Two instances sharing PostgreSQL and Redis: create on A, deliver to users
 * connected to B, against the same load on one instance.
 */
import { randomUUID } from "node:crypto";
import { type BenchOptions, seedUsers, startBenchHerald, wsUrlsFor } from "../lib/context.js";
import { LoadGenerator } from "../lib/loadgen.js";
import type { CaseResult } from "../lib/report.js";
import { median } from "../lib/stats.js";
import { drive } from "./create-to-deliver.js";

export async function cluster(o: BenchOptions): Promise<CaseResult[]> {
  if (!process.env.REDIS_URL) {
    return [{ name: "cluster: create on A, deliver on B", unit: "", herald: [], baseline: [], baselineName: "one instance", higherIsBetter: true, goal: ">= 0.7", saturated: false, errors: [], note: "skipped: REDIS_URL not set" }];
  }
  const count = o.quick ? 2000 : 10_000;
  const busPrefix = `herald-bench-${randomUUID()}:`;
  const a = await startBenchHerald({ busPrefix });
  const b = await startBenchHerald({ busPrefix, sharedDatabase: a.database });
  const users = await seedUsers(a, 1000, "cl-");
  const onB = await LoadGenerator.start(2);
  const single = await LoadGenerator.start(2);
  const headers = { authorization: "Bearer test-api-key" };
  try {
    await onB.connect(await wsUrlsFor(b, users));
    const two: number[] = [];
    const one: number[] = [];
    const errors: string[] = [];
    let saturated = false;
    for (let r = 0; r < o.rounds; r++) {
      const x = await drive(`${a.baseUrl}/api/notifications`, headers, onB, users, count);
      two.push(x.throughput);
      if (x.lost || x.errors) errors.push(`round ${r}: ${x.lost} lost, ${x.errors} HTTP errors`);
      // Same load on one instance: clients on A, create on A.
      await single.connect(await wsUrlsFor(a, users));
      const y = await drive(`${a.baseUrl}/api/notifications`, headers, single, users, count);
      await single.drop();
      one.push(y.throughput);
      saturated ||= x.saturated || y.saturated;
    }
    const ratio = median(two.map((t, i) => t / one[i]!));
    return [{ name: "cluster: create on A, deliver on B", unit: "req/s", herald: two, baseline: one, baselineName: "same case on one instance", higherIsBetter: true, goal: ">= 0.7", goalMet: ratio >= 0.7, saturated, errors }];
  } finally {
    await onB.close();
    await single.close();
    await b.stop();
    await a.stop();
  }
}
