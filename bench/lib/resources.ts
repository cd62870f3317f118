/**
 * Where a round's CPU went: this process's main thread (where every server
 * under test runs but embedded PGlite in its worker thread; the load
 * generators are worker threads too: both counted in otherThreadsMs), the PostgreSQL
 * server processes and the Redis server, read from /proc around the round.
 * Linux only; elsewhere the database and Redis figures are NaN.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { performance } from "node:perf_hooks";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICK_MS = 10;

export interface CpuSnapshot {
  elu: ReturnType<typeof performance.eventLoopUtilization>;
  main: ThreadCounters;
  /** CPU ms of every process named like this, summed (utime + stime). */
  postgres: number;
  redis: number;
  /** CPU ms of each of this process's threads but the main one, by thread id. */
  threads: Map<string, number>;
}

export interface CpuCost {
  /** Share of the round's wall time the main thread was busy (0..1). */
  mainBusy: number;
  mainMs: number;
  postgresMs: number;
  redisMs: number;
  /** Write system calls (write, writev) of the main thread: to PostgreSQL, Redis and client sockets, and any file (pino logs; in-process PGlite's data files). */
  mainWrites: number;
  /** Read system calls (read, readv...) of the main thread: each socket read an event of the loop (a request, an ack, a database or Redis answer). */
  mainReads: number;
  /** Times the main thread was taken off its core while runnable (nonvoluntary context switches). */
  mainPreempted: number;
  /**
   * CPU ms of this process's other threads in the round, busiest first: the load generators,
   * and the embedded database's worker thread when PGlite runs in one (the busiest besides
   * the generators). Threads have no names to tell them apart by.
   */
  otherThreadsMs: number[];
}

/** Per-thread kernel counters of the main thread (NaN where /proc is not there). */
interface ThreadCounters {
  writes: number;
  reads: number;
  preempted: number;
}

function mainThreadCounters(): ThreadCounters {
  // The main thread's task id is the process id; worker threads (the load generators) have their own.
  const dir = `/proc/self/task/${process.pid}`;
  try {
    const io = readFileSync(`${dir}/io`, "utf8");
    const status = readFileSync(`${dir}/status`, "utf8");
    return {
      writes: Number(/^syscw:\s*(\d+)/m.exec(io)?.[1]),
      reads: Number(/^syscr:\s*(\d+)/m.exec(io)?.[1]),
      preempted: Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1]),
    };
  } catch {
    return { writes: Number.NaN, reads: Number.NaN, preempted: Number.NaN };
  }
}

function otherThreadsCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return out;
  }
  for (const tid of tids) {
    if (tid === String(process.pid)) continue;
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, (Number(fields[11]) + Number(fields[12])) * TICK_MS);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function processCpuMs(): { postgres: number; redis: number } {
  const sums = { postgres: 0, redis: 0 };
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return { postgres: Number.NaN, redis: Number.NaN };
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ...": comm may hold spaces, so split after its closing parenthesis.
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const kind = comm.startsWith("postgres") ? "postgres" : comm.startsWith("redis-server") ? "redis" : undefined;
    if (!kind) continue;
    const fields = stat.slice(close + 2).split(" ");
    // After comm: state is field 3 of the man page, utime 14 and stime 15, so indexes 11 and 12 here.
    sums[kind] += (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  }
  return sums;
}

export function cpuSnapshot(): CpuSnapshot {
  return { elu: performance.eventLoopUtilization(), main: mainThreadCounters(), threads: otherThreadsCpuMs(), ...processCpuMs() };
}

export function cpuSince(start: CpuSnapshot): CpuCost {
  const elu = performance.eventLoopUtilization(start.elu);
  const now = processCpuMs();
  const main = mainThreadCounters();
  return {
    mainBusy: elu.utilization,
    mainMs: elu.active,
    postgresMs: spent(start.postgres, now.postgres),
    redisMs: spent(start.redis, now.redis),
    mainWrites: main.writes - start.main.writes,
    mainReads: main.reads - start.main.reads,
    mainPreempted: main.preempted - start.main.preempted,
    otherThreadsMs: [...otherThreadsCpuMs()].map(([tid, ms]) => ms - (start.threads.get(tid) ?? 0)).sort((a, b) => b - a),
  };
}

/** CPU ms between two sums; NaN when it went down (a process that exited in the round took its CPU out of the sum). */
function spent(before: number, after: number): number {
  return after >= before ? after - before : Number.NaN;
}

/**
 * With BENCH_CPU_PROFILE=<dir>, runs `fn` under the V8 CPU profiler of this
 * thread and writes `<dir>/<name>.cpuprofile` (open it in Chrome DevTools);
 * without it, just runs `fn`.
 */
export async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_CPU_PROFILE;
  if (!dir) return fn();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
  await session.post("Profiler.start");
  try {
    return await fn();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${name}.cpuprofile`, JSON.stringify(profile));
  }
}
