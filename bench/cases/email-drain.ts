/**
 * The delivery worker draining a backlog of e-mail: N high-priority
 * notifications to 1,000 users, each queued for e-mail due now, written with
 * the worker stopped; then Herald's worker from its start to the last message
 * accepted by a loopback SMTP sink. Against Herald's mailer alone sending N
 * messages of the same size over the same connections (5) with as many in
 * flight as the worker (16), in the same rounds; on PostgreSQL and on the
 * embedded default (PGlite).
 */
import { performance } from "node:perf_hooks";
import type { TestHerald } from "../../test/support/herald.js";
import { createMailer } from "../../src/mail/index.js";
import { type BenchOptions, seedUsers, startBenchHerald, startEmbeddedHerald } from "../lib/context.js";
import type { CaseResult } from "../lib/report.js";
import { type SmtpSink, startSmtpSink } from "../lib/smtp-sink.js";

const USERS = 1000;
/** The worker's default sends in flight (src/channels/worker.ts). */
const IN_FLIGHT = 16;
const CONNECTIONS = 5;

interface Round {
  herald: number;
  baseline: number;
  /** This process's CPU per e-mail (ms): Herald's worker (with PGlite's thread when embedded), the mailer alone. */
  heraldCpu: number;
  baselineCpu: number;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 300_000;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

async function round(h: TestHerald, sink: SmtpSink, users: string[], n: number, tag: string): Promise<Round> {
  for (let i = 0; i < n; i += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, n - i) }, (_, k) =>
        h.herald.notifications.createAndSendNotification({ userId: users[(i + k) % users.length]!, type: "new_message", title: `Drain ${tag} #${i + k}`, message: "x".repeat(120) }),
      ),
    );
  }
  sink.reset();
  const heraldCpu = process.cpuUsage();
  const started = performance.now();
  await h.herald.delivery.start();
  await until(() => sink.accepted >= n, `${n} e-mails from Herald`);
  const heraldMs = performance.now() - started;
  const heraldCpuMs = cpuMs(heraldCpu);
  await h.herald.delivery.stop();
  if (sink.accepted !== n) throw new Error(`Herald sent ${sink.accepted} e-mails for ${n} notifications`);

  // The same bytes a message, sent by the mailer alone.
  const body = "x".repeat(Math.max(1, Math.round(sink.bytes / n / 2)));
  sink.reset();
  const mailer = createMailer({ host: "127.0.0.1", port: sink.port, secure: false, from: "Herald <noreply@herald.local>", maxConnections: CONNECTIONS });
  const baselineCpu = process.cpuUsage();
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await mailer.send({ to: `${users[next++ % users.length]}@bench.test`, subject: `Drain ${tag}`, html: body, text: body });
    }),
  );
  const baselineMs = performance.now() - t;
  const baselineCpuMs = cpuMs(baselineCpu);
  await mailer.close();
  return { herald: (n / heraldMs) * 1000, baseline: (n / baselineMs) * 1000, heraldCpu: heraldCpuMs / n, baselineCpu: baselineCpuMs / n };
}

export async function emailDrain(o: BenchOptions): Promise<CaseResult[]> {
  const n = o.quick ? 1000 : 5000;
  const out: CaseResult[] = [];
  for (const engine of ["PostgreSQL", "embedded PGlite"] as const) {
    const sink = await startSmtpSink();
    const env = { EMAIL_HOST: "127.0.0.1", EMAIL_PORT: String(sink.port), EMAIL_SECURE: "false" };
    const h = engine === "PostgreSQL" ? await startBenchHerald({ env }) : await startEmbeddedHerald({ env });
    try {
      const users = await seedUsers(h, USERS, "drain-");
      const rounds: Round[] = [];
      for (let r = 0; r < o.rounds; r++) rounds.push(await round(h, sink, users, n, `${r}`));
      const cpu = (f: (r: Round) => number) => rounds.map((r) => f(r).toFixed(3)).join(", ");
      out.push({
        name: `e-mail drain, ${n.toLocaleString("en-US")} queued, ${engine}`,
        unit: "mails/s",
        herald: rounds.map((r) => r.herald),
        baseline: rounds.map((r) => r.baseline),
        baselineName: "Herald's mailer alone",
        higherIsBetter: true,
        goal: "(reported)",
        saturated: false,
        errors: [],
        note:
          `the delivery worker (${IN_FLIGHT} sends in flight, claims of up to 20 rows, successes recorded in batches) on ${h.database.kind}, from its start to the last message accepted by a loopback SMTP sink, against Herald's mailer alone sending messages of the same size, ${CONNECTIONS} connections and ${IN_FLIGHT} in flight, in this process; ` +
          `this process's CPU per e-mail, ms (the sink's included on both sides${engine === "embedded PGlite" ? ", and PGlite's thread on Herald's" : ""}): Herald ${cpu((r) => r.heraldCpu)}; mailer alone ${cpu((r) => r.baselineCpu)}.`,
      });
    } finally {
      await h.stop();
      await sink.close();
    }
  }
  return out;
}
