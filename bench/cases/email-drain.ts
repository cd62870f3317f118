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
/** Messages in flight on the mailer-alone side (the worker runs its default, 5: src/channels/worker.ts). */
const IN_FLIGHT = 16;
const CONNECTIONS = 5;

/** One side of a round: mails/s, this process's CPU per mail (ms; with PGlite's thread when embedded), bytes per message. */
interface Side {
  rate: number;
  cpu: number;
  bytes: number;
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

/** Herald's worker draining `n` e-mails it queues first; resolves with mails/s, CPU ms per mail and bytes per mail. */
async function heraldDrain(h: TestHerald, sink: SmtpSink, users: string[], n: number, tag: string): Promise<Side> {
  for (let i = 0; i < n; i += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, n - i) }, (_, k) =>
        h.herald.notifications.createAndSendNotification({ userId: users[(i + k) % users.length]!, type: "new_message", title: `Drain ${tag} #${i + k}`, message: "x".repeat(120) }),
      ),
    );
  }
  sink.reset();
  const cpu = process.cpuUsage();
  const started = performance.now();
  await h.herald.delivery.start();
  await until(() => sink.accepted >= n, `${n} e-mails from Herald`);
  const ms = performance.now() - started;
  const cpuPerMail = cpuMs(cpu) / n;
  await h.herald.delivery.stop();
  if (sink.accepted !== n) throw new Error(`Herald sent ${sink.accepted} e-mails for ${n} notifications`);
  return { rate: (n / ms) * 1000, cpu: cpuPerMail, bytes: sink.bytes / n };
}

/** Herald's mailer alone sending `n` messages whose html and text parts are `partBytes` each. */
async function mailerAlone(sink: SmtpSink, users: string[], n: number, partBytes: number, tag: string): Promise<Side> {
  const body = "x".repeat(partBytes);
  sink.reset();
  const mailer = createMailer({ host: "127.0.0.1", port: sink.port, secure: false, from: "Herald <noreply@herald.local>", maxConnections: CONNECTIONS });
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await mailer.send({ to: `${users[next++ % users.length]}@bench.test`, subject: `Drain ${tag}`, html: body, text: body });
    }),
  );
  const ms = performance.now() - started;
  const cpuPerMail = cpuMs(cpu) / n;
  await mailer.close();
  return { rate: (n / ms) * 1000, cpu: cpuPerMail, bytes: sink.bytes / n };
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
      const rounds: { herald: Side; baseline: Side }[] = [];
      // The first round measures Herald's message size first, and the mailer's messages are sized to match
      // (less their own headers, measured on one message with one-byte parts); the sides then alternate.
      const overhead = (await mailerAlone(sink, users, 1, 1, "calibration")).bytes - 2;
      let partBytes = 0;
      for (let r = 0; r < o.rounds; r++) {
        if (r % 2 === 0) {
          const herald = await heraldDrain(h, sink, users, n, `${r}`);
          partBytes ||= Math.max(1, Math.round((herald.bytes - overhead) / 2));
          rounds.push({ herald, baseline: await mailerAlone(sink, users, n, partBytes, `${r}`) });
        } else {
          const baseline = await mailerAlone(sink, users, n, partBytes, `${r}`);
          rounds.push({ herald: await heraldDrain(h, sink, users, n, `${r}`), baseline });
        }
      }
      const per = (f: (r: { herald: Side; baseline: Side }) => number, digits: number) => rounds.map((r) => f(r).toFixed(digits)).join(", ");
      out.push({
        name: `e-mail drain, ${n.toLocaleString("en-US")} queued, ${engine}`,
        unit: "mails/s",
        herald: rounds.map((r) => r.herald.rate),
        baseline: rounds.map((r) => r.baseline.rate),
        baselineName: "Herald's mailer alone",
        higherIsBetter: true,
        goal: "(reported)",
        saturated: false,
        errors: [],
        note:
          `the delivery worker (its default sends in flight, claims of up to 20 rows) on ${h.database.kind}, from its start to the last message accepted by a loopback SMTP sink, against Herald's mailer alone sending messages of about the same size, ${CONNECTIONS} connections and ${IN_FLIGHT} in flight, in this process, alternating which goes first; ` +
          `bytes per message: Herald ${per((r) => r.herald.bytes, 0)}, mailer alone ${per((r) => r.baseline.bytes, 0)}; ` +
          `this process's CPU per e-mail, ms (the sink's included on both sides${engine === "embedded PGlite" ? ", and PGlite's thread on Herald's" : ""}): Herald ${per((r) => r.herald.cpu, 3)}; mailer alone ${per((r) => r.baseline.cpu, 3)}.`,
      });
    } finally {
      await h.stop();
      await sink.close();
    }
  }
  return out;
}
