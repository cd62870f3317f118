/**
 * `node --import tsx bench/broadcast-frames.ts [--recipients 1000] [--rounds 7]`
 *
 * The fan-out's per-recipient JavaScript, apart from the sockets: building a
 * recipient's whole WebSocket frame (BroadcastTemplate.frameFor) for plain
 * ids (UUIDs and ASCII user ids, quoted as they are) against ids that take
 * JSON.stringify (a user id with a character JSON escapes: the path every
 * recipient took before 017f574), and the bus message that tells other
 * instances of the same recipients (built only when another instance
 * listens, 93c76a3). Microseconds per recipient, the median of the rounds;
 * prints the table, writes nothing.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { BroadcastBase } from "../src/notifications/index.js";
import { BroadcastTemplate, broadcastHeader, encodeEnvelope } from "../src/realtime/frames.js";
import { median } from "./lib/stats.js";

const { values } = parseArgs({ options: { recipients: { type: "string", default: "1000" }, rounds: { type: "string", default: "7" } } });
const count = Number(values.recipients);
const rounds = Number(values.rounds);
const REPEAT = 200;

const presentation = { sound: true, volume: 70, desktop: true, silent: false };
const now = new Date().toISOString();
const base: BroadcastBase = {
  type: "platform_update", priority: "normal", title: "New feature: Advanced Analytics", message: "Check out our new analytics dashboard; it shows engagement by type and channel.",
  description: null, icon: null, actionUrl: "/analytics", actionLabel: "Explore", read: false, archived: false, deliveryStatus: "pending",
  sentAt: null, deliveredAt: null, readAt: null, relatedId: null, data: null, createdAt: now, updatedAt: now,
};
const recipients = (userId: (i: number) => string) => Array.from({ length: count }, (_, i) => ({ userId: userId(i), id: randomUUID(), seq: i + 1, presentation }));
const plain = recipients((i) => `user-${i}`);
const escaped = recipients((i) => `user-${i}\t`);
const template = new BroadcastTemplate(base);

let sink = 0;
/** Microseconds per recipient of `work` over the whole list, REPEAT times. */
const perRecipient = (work: () => void) => {
  const t = performance.now();
  for (let k = 0; k < REPEAT; k++) work();
  return ((performance.now() - t) * 1000) / (REPEAT * count);
};
const cases = {
  "frame, plain ids": () => {
    for (const r of plain) sink += template.frameFor(r).wire!.length;
  },
  "frame, ids through JSON.stringify": () => {
    for (const r of escaped) sink += template.frameFor(r).wire!.length;
  },
  "bus message for other instances": () => {
    sink += encodeEnvelope(broadcastHeader("instance-1", plain), template.body).length;
  },
};
const figures = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
for (let round = -1; round < rounds; round++) {
  for (const [name, work] of Object.entries(cases)) {
    const us = perRecipient(work);
    if (round >= 0) figures.get(name)!.push(us);
  }
}
const stringified = median(figures.get("frame, ids through JSON.stringify")!);
console.log(`| per recipient (${count.toLocaleString("en-US")} recipients, ${rounds} rounds, median) | us | ratio to the JSON.stringify frame |`);
console.log("| --- | --- | --- |");
for (const [name, us] of figures) console.log(`| ${name} | ${median(us).toFixed(2)} | ${(median(us) / stringified).toFixed(2)} |`);
if (sink === 0) console.log("(nothing built)");
