/**
 * Issue 17: an immediate out-of-app send starts within 300 ms of its creation
 * (p99). Herald creates high-priority notifications for users with SMS on,
 * paced (one every PACE_MS, each on its own), and its own delivery worker
 * (woken by NOTIFY herald_queue, poll 1 s) texts them through the signed
 * webhook provider to a receiver in this process: latency is from the call to
 * createAndSendNotification to the webhook request's arrival (and, reported
 * beside it, from the call's answer, i.e. the commit, to the arrival: the
 * queue's own share). The baseline is the same webhook provider called
 * directly, in the same run.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebhookSmsProvider } from "../../src/channels/index.js";
import { type BenchOptions, startBenchHerald } from "../lib/context.js";
import type { CaseResult } from "../lib/report.js";
import { median, percentile } from "../lib/stats.js";

const USERS = 50;
const PACE_MS = 100;
const WARM_UP = 20;
const SECRET = `whsec_${Buffer.from("out-of-app-latency-bench-secret!").toString("base64")}`;

/** A webhook receiver that records when each notification's request arrived. */
async function startReceiver() {
  const arrived = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = performance.now();
      const { notificationId } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { notificationId: string };
      if (!arrived.has(notificationId)) arrived.set(notificationId, at);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`;
  return { url, arrived, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

interface Latencies {
  /** From the call that creates to the webhook's arrival. */
  fromCall: number[];
  /** From the call's answer (the notification and its send committed) to the arrival. */
  fromAnswer: number[];
}

/** Runs `count` paced sends; resolves with each one's latencies (ms) once all arrived, or reports the missing. */
async function paced(count: number, arrived: Map<string, number>, send: (i: number) => Promise<string>, errors: string[], what: string): Promise<Latencies> {
  const started = new Map<string, { called: number; answered: number }>();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const called = performance.now();
    inFlight.push(send(i).then((id) => void started.set(id, { called, answered: performance.now() })));
    await new Promise((r) => setTimeout(r, PACE_MS));
  }
  await Promise.all(inFlight);
  const deadline = Date.now() + 15_000;
  while ([...started.keys()].some((id) => !arrived.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const missing = [...started.keys()].filter((id) => !arrived.has(id)).length;
  if (missing > 0) errors.push(`${what}: ${missing} of ${count} sends never reached the webhook`);
  const done = [...started].filter(([id]) => arrived.has(id));
  return { fromCall: done.map(([id, t]) => arrived.get(id)! - t.called), fromAnswer: done.map(([id, t]) => arrived.get(id)! - t.answered) };
}

export async function outOfAppLatency(o: BenchOptions): Promise<CaseResult[]> {
  const count = o.quick ? 100 : 500;
  const receiver = await startReceiver();
  const h = await startBenchHerald({ jobs: true, env: { SMS_WEBHOOK_URL: receiver.url, HERALD_WEBHOOK_SECRET: SECRET } });
  const errors: string[] = [];
  try {
    await h.database.query(
      `INSERT INTO users (id, phone, timezone) SELECT 'ooa-' || g, '+1555200' || lpad(g::text, 4, '0'), 'UTC' FROM generate_series(0, $1 - 1) g`,
      [USERS],
    );
    await h.database.query(`INSERT INTO notification_preferences (user_id, sms_enabled, email_enabled) SELECT id, true, false FROM users WHERE id LIKE 'ooa-%'`);
    const direct = new WebhookSmsProvider({ url: receiver.url, secret: SECRET });
    const create = async (i: number, title: string) => {
      const n = await h.herald.notifications.createAndSendNotification({ userId: `ooa-${i % USERS}`, type: "new_message", title, message: "m" });
      return n!.id;
    };
    // Warm-up, not measured: connections opened, code compiled, caches filled.
    await paced(WARM_UP, receiver.arrived, (i) => create(i, `Warm-up #${i}`), errors, "warm-up");
    const herald = { p50: [] as number[], p99: [] as number[], queueP99: [] as number[] };
    const baseline = { p50: [] as number[], p99: [] as number[] };
    for (let r = 0; r < o.rounds; r++) {
      const viaHerald = await paced(count, receiver.arrived, (i) => create(i, `Round ${r} #${i}`), errors, "herald");
      const viaWebhook = await paced(
        count,
        receiver.arrived,
        async (i) => {
          const id = crypto.randomUUID();
          await direct.send({ to: `+1555200${String(i % USERS).padStart(4, "0")}`, title: `Direct ${r} #${i}`, message: "m", notificationId: id });
          return id;
        },
        errors,
        "baseline",
      );
      herald.p50.push(percentile(viaHerald.fromCall, 50));
      herald.p99.push(percentile(viaHerald.fromCall, 99));
      herald.queueP99.push(percentile(viaHerald.fromAnswer, 99));
      baseline.p50.push(percentile(viaWebhook.fromCall, 50));
      baseline.p99.push(percentile(viaWebhook.fromCall, 99));
    }
    const note = `${count} high-priority notifications per round after ${WARM_UP} not measured, one every ${PACE_MS} ms, ${USERS} users with SMS on; Herald's own worker (poll 1 s, woken by NOTIFY) on ${h.database.kind}; latency = createAndSendNotification called -> webhook request received`;
    return [
      { name: "out-of-app create -> SMS webhook, p50", unit: "ms", herald: herald.p50, baseline: baseline.p50, baselineName: "the webhook called directly", higherIsBetter: false, goal: "(reported)", saturated: false, errors, note },
      {
        name: "out-of-app create -> SMS webhook, p99",
        unit: "ms",
        herald: herald.p99,
        baseline: baseline.p99,
        baselineName: "the webhook called directly",
        higherIsBetter: false,
        goal: "p99 <= 300 ms",
        goalMet: median(herald.p99) <= 300,
        saturated: false,
        errors: [],
      },
      {
        name: "  same, p99 from the create call's answer (the queue's share)",
        unit: "ms",
        herald: herald.queueP99,
        baseline: baseline.p99,
        baselineName: "the webhook called directly",
        higherIsBetter: false,
        goal: "(reported)",
        saturated: false,
        errors: [],
      },
    ];
  } finally {
    await h.stop();
    await receiver.close();
  }
}
