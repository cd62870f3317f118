/**
 * `node --expose-gc --conditions=herald-source --import tsx bench/trace-pglite.ts [count]`:
 * where embedded Herald's PGlite time goes under create-to-deliver load.
 * Runs the create-to-deliver case's closed load (32 in flight, 1,000 users
 * online, a warm-up round of 2,000) against embedded Herald on PGlite in a
 * directory, with PGlite's protocol calls timed (execution only, not the wait
 * for PGlite's one connection) and grouped by the statement text last parsed,
 * then prints PGlite time per creation for each statement. The round's
 * delivery marks, analytics events and roll-up passes are waited for and counted.
 */
import { performance } from "node:perf_hooks";
import { PGlite } from "@electric-sql/pglite";
import { drive } from "./cases/create-to-deliver.js";
import { seedUsers, startEmbeddedHerald, wsUrlsFor } from "./lib/context.js";
import { LoadGenerator } from "./lib/loadgen.js";

const stats = new Map<string, { n: number; ms: number; max: number }>();
let on = false;
let current = "(start)";
const dec = new TextDecoder();
/** Named statements' texts, by name. */
const named = new Map<string, string>();
function sqlOf(msg: Uint8Array): string {
  // First 'P' (Parse) or 'Q' message's text.
  let i = 0;
  while (i + 5 <= msg.length) {
    const type = msg[i]!;
    const len = (msg[i + 1]! << 24) | (msg[i + 2]! << 16) | (msg[i + 3]! << 8) | msg[i + 4]!;
    if (type === 0x51) return dec.decode(msg.subarray(i + 5, i + 1 + len - 1));
    if (type === 0x50) {
      const body = msg.subarray(i + 5, i + 1 + len);
      const z = body.indexOf(0);
      const z2 = body.indexOf(0, z + 1);
      const text = dec.decode(body.subarray(z + 1, z2));
      // A named statement (src/db/pglite-statements.ts): its later Binds name it.
      if (z > 0) named.set(dec.decode(body.subarray(0, z)), text);
      return text;
    }
    if (type === 0x42) {
      const body = msg.subarray(i + 5, i + 1 + len);
      const z = body.indexOf(0);
      const name = dec.decode(body.subarray(z + 1, body.indexOf(0, z + 1)));
      if (name) return named.get(name) ?? name;
    }
    i += 1 + len;
  }
  return "";
}
const proto = PGlite.prototype as unknown as { execProtocolRawSync(m: Uint8Array): unknown };
const orig = proto.execProtocolRawSync;
proto.execProtocolRawSync = function (this: unknown, m: Uint8Array) {
  if (!on) {
    // Names prepared during the warm-up still map to their text.
    if (m[0] === 0x50) sqlOf(m);
    return orig.call(this, m);
  }
  const t = performance.now();
  try {
    return orig.call(this, m);
  } finally {
    const ms = performance.now() - t;
    const sql = sqlOf(m);
    if (sql) current = sql.replace(/\s+/g, " ").trim().slice(0, 110);
    const key = current;
    const s = stats.get(key) ?? { n: 0, ms: 0, max: 0 };
    s.n++;
    s.ms += ms;
    s.max = Math.max(s.max, ms);
    stats.set(key, s);
  }
};

// The trace patches PGlite's class on this thread: PGlite must run here, not in its worker (the default).
process.env.HERALD_PGLITE_THREAD = "0";
const h = await startEmbeddedHerald();
const users = await seedUsers(h, 1000, "c2d-");
const gen = await LoadGenerator.start(2);
await gen.connect(await wsUrlsFor(h, users));
const headers = { authorization: "Bearer test-api-key" };
await drive(`${h.baseUrl}/api/notifications`, headers, gen, users, 2000);
on = true;
const count = Number(process.argv[2] ?? 8000);
const t0 = performance.now();
const r = await drive(`${h.baseUrl}/api/notifications`, headers, gen, users, count);
// The round's delivery marks, then its analytics events and the roll-up passes that fold them in.
await h.herald.realtime.flushDeliveryLog();
await h.herald.runtime.analytics.flush();
on = false;
const wall = performance.now() - t0;
let total = 0;
for (const s of stats.values()) total += s.ms;
console.log(`round: ${r.throughput.toFixed(0)}/s p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)}; PGlite ${total.toFixed(0)} ms of ${wall.toFixed(0)} ms wall, ${(total / count).toFixed(3)} ms per creation`);
for (const [k, s] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25))
  console.log(`${(s.ms / count).toFixed(4)} ms/creation  n=${s.n}  avg ${(s.ms / s.n).toFixed(2)}  max ${s.max.toFixed(1)}  ${k}`);
await gen.close();
await h.stop();
process.exit(0);
