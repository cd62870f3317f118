/**
 * `node --import tsx bench/perf-owners.ts FILE [TID]`: where one thread's CPU
 * goes in a `perf record -g` of a Node process run with --perf-basic-prof
 * (bench/c2d-alone.ts --perf FILE makes one). Prints each thread's share of
 * the samples, then for thread TID (default: the busiest) the share of each
 * owner: every sample is charged to the first frame, from the leaf up, that
 * belongs to a known owner (a library, Herald's src/, a part of Node), so a
 * library's own code counts as the library and the Node stream code it calls
 * as Node's socket I/O; the kernel's share is given apart. Then the src/
 * functions charged the most.
 *
 * Names come from perf's JIT map, which can name a reused code address after
 * the function that held it before: read single functions with care, owners
 * (dozens of functions each) hold up better.
 */
import { execFileSync } from "node:child_process";

const [file, wanted] = process.argv.slice(2);
if (!file) throw new Error("usage: bench/perf-owners.ts PERF_DATA [TID]");

/** Owners, first match wins on each frame; a frame matching none is skipped for the next one up. */
const OWNERS: [string, string[]][] = [
  ["GC", ["Scavenge", "GarbageCollect", "MarkCompact", "ConcurrentMarking", "MinorMark", "Heap::CollectGarbage"]],
  ["JSON.parse", ["JsonParser"]],
  ["JSON.stringify", ["JsonStringifier"]],
  ["ws (library)", ["node_modules/ws/"]],
  ["ioredis", ["node_modules/ioredis", "redis-parser", "redis-errors", "denque", "cluster-key-slot"]],
  ["pg", ["node_modules/pg", "pg-protocol", "pg-pool", "pg-types", "postgres-"]],
  ["PGlite", ["@electric-sql/pglite", "wasm-function", "wasm-to-js", "js-to-wasm"]],
  ["Fastify", ["node_modules/fastify", "find-my-way", "avvio", "fast-json-stringify", "secure-json-parse", "@fastify", "toad-cache", "fast-querystring"]],
  ["zod", ["node_modules/zod"]],
  ["lru-cache", ["node_modules/lru-cache"]],
  ["pino", ["node_modules/pino", "sonic-boom"]],
  ["Node http", ["node:_http", "llhttp", "Parser::"]],
  ["Node socket I/O (streams, net)", ["node:internal/streams", "node:net", "stream_base_commons", "node:stream", "StreamBase", "LibuvStreamWrap"]],
  ["Node events, timers, ticks", ["node:events", "node:internal/timers", "task_queues", "node:timers", "node:internal/async_hooks"]],
  ["Node worker messages", ["node::worker::", "node:internal/worker"]],
  ["Herald src/", ["/src/"]],
  ["Herald bench/", ["/bench/"]],
  ["Node (other)", ["node:", "node::"]],
  ["event loop (epoll)", ["uv__io_poll", "uv_run", "epoll"]],
];

interface Sample {
  tid: string;
  frames: string[];
  kernelLeaf: boolean;
}

function* samples(): Generator<Sample> {
  const text = execFileSync("perf", ["script", "-i", file!, "-F", "tid,ip,sym,dso"], { maxBuffer: 1 << 30, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  let current: Sample | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (!line.startsWith("\t")) {
      if (current) yield current;
      current = { tid: line.trim().split(/\s+/)[0]!, frames: [], kernelLeaf: false };
      continue;
    }
    const m = /^\s*[0-9a-f]+ (.*) \((.*)\)$/.exec(line);
    if (!m || !current) continue;
    if (current.frames.length === 0) current.kernelLeaf = m[2]!.includes("kernel");
    current.frames.push(m[1]!);
  }
  if (current) yield current;
}

const byThread = new Map<string, number>();
const all: Sample[] = [];
for (const s of samples()) {
  byThread.set(s.tid, (byThread.get(s.tid) ?? 0) + 1);
  all.push(s);
}
const total = all.length;
const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1).padStart(5)}%`;
const threads = [...byThread].sort((a, b) => b[1] - a[1]);
console.log(`${total} samples; by thread (tid: share of all samples):`);
for (const [tid, n] of threads.slice(0, 10)) console.log(`  ${tid.padStart(8)}: ${pct(n, total)}`);

const tid = wanted ?? threads[0]![0];
const mine = all.filter((s) => s.tid === tid);
const owners = new Map<string, number>();
const srcFunctions = new Map<string, number>();
let kernel = 0;
for (const s of mine) {
  if (s.kernelLeaf) kernel++;
  let owner = "(no owner)";
  for (const frame of s.frames) {
    const hit = OWNERS.find(([, patterns]) => patterns.some((p) => frame.includes(p)));
    if (!hit) continue;
    owner = hit[0];
    if (owner === "Herald src/") {
      const name = frame.replace(/^JS:[*^~]?/, "").replace(/file:\/\/\S*\/src\//, "src/").replace(/:\d+:\d+$/, "");
      srcFunctions.set(name, (srcFunctions.get(name) ?? 0) + 1);
    }
    break;
  }
  owners.set(owner, (owners.get(owner) ?? 0) + 1);
}
console.log(`\nthread ${tid}: ${mine.length} samples; in the kernel (leaf frame): ${pct(kernel, mine.length)}`);
console.log("owner (first known frame from the leaf) | share of the thread");
for (const [owner, n] of [...owners].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(n, mine.length)}  ${owner}`);
console.log("Herald src/ functions charged the most:");
for (const [name, n] of [...srcFunctions].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${pct(n, mine.length)}  ${name}`);
