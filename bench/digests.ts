/**
 * Digest run for N users (default 10,000, a few notifications each) on real
 * PostgreSQL through a real smtp-server sink on loopback, against a baseline
 * measured in the same run: nodemailer sending the same pre-rendered message
 * N times over the same kind of pooled transport (same connections, same
 * number of messages in flight).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node --import tsx bench/digests.ts [--users 10000] [--per-user 3] [--no-append]
 */
import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import nodemailer from "nodemailer";
import pg from "pg";
import { loadConfig } from "../src/config/index.js";
import { migrate, openDatabase, quoteIdent } from "../src/db/index.js";
import { EmailDigestService } from "../src/digests/index.js";
import { createMailer, unsubscribeKey } from "../src/mail/index.js";
import { ManualClock, createMetricsRegistry, silentLogger } from "../src/observability/index.js";
import { describeMachine } from "./lib/machine.js";
import { startSmtpSink } from "./lib/smtp-sink.js";

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const USERS = arg("users", 10_000);
const PER_USER = arg("per-user", 3);
const APPEND = !args.includes("--no-append");
const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const MAX_CONNECTIONS = 5;
const IN_FLIGHT = 32; // the most the digest delivery keeps in flight (2 loops x 16)

async function main() {
  const schema = `bench_digests_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
  const database = await openDatabase({ url, schema, poolSize: 10 });
  const sink = await startSmtpSink();
  try {
    await migrate(database);
    // All users daily in UTC, so one 08:00 window closes for all of them at once (the worst case for one run).
    await database.query(
      `INSERT INTO users (id, email, timezone)
       SELECT 'u' || g, 'u' || g || '@example.test', 'UTC' FROM generate_series(1, $1) g`,
      [USERS],
    );
    await database.query(
      `INSERT INTO notifications (user_id, type, priority, title, message, action_url, created_at)
       SELECT 'u' || g, (ARRAY['new_message','booking_request','payment_received'])[1 + (k % 3)], 'normal',
              'Notification ' || k || ' for <user ' || g || '>', 'Something happened & needs a look', '/items/' || g || '/' || k,
              timestamptz '2025-06-10T07:00:00Z' + (k || ' minutes')::interval
         FROM generate_series(1, $1) g, generate_series(1, $2) k`,
      [USERS, PER_USER],
    );
    await database.query("ANALYZE");
    const config = loadConfig({ NODE_ENV: "test", APP_URL: "https://app.example.test", EMAIL_FROM: "Herald <noreply@example.test>", LOG_LEVEL: "silent" });
    const smtp = { host: "127.0.0.1", port: sink.port, secure: false, from: config.email.from, maxConnections: MAX_CONNECTIONS };

    // Herald: the whole scheduled run (claim, lease, content query, render, store, send, mark sent).
    const service = new EmailDigestService(smtp, {
      database,
      clock: new ManualClock("2025-06-10T08:00:30Z"),
      logger: silentLogger,
      config,
      metrics: createMetricsRegistry(false),
      unsubscribeKey: unsubscribeKey(randomBytes(32).toString("hex")),
    });
    const t0 = performance.now();
    const summary = await service.runDue();
    const heraldMs = performance.now() - t0;
    await service.stop();
    if (summary.sent !== USERS || sink.accepted !== USERS) throw new Error(`expected ${USERS} digests, sent ${summary.sent}, sink got ${sink.accepted}`);
    const heraldBytes = sink.bytes;

    // Baseline: the same pre-rendered message, N times, same pool size, same messages in flight.
    const [sample] = await database.query<{ subject: string; html_content: string; text_content: string }>(
      "SELECT subject, html_content, text_content FROM email_digests WHERE status = 'sent' LIMIT 1",
    );
    sink.reset();
    const transport = nodemailer.createTransport({ pool: true, host: "127.0.0.1", port: sink.port, secure: false, maxConnections: MAX_CONNECTIONS, maxMessages: Infinity });
    const message = {
      from: config.email.from,
      subject: sample!.subject,
      html: sample!.html_content,
      text: sample!.text_content,
      headers: { "List-Unsubscribe": "<https://app.example.test/preferences>" },
    };
    // Both baselines send with IN_FLIGHT messages in flight over MAX_CONNECTIONS connections.
    const sendAll = async (send: (to: string) => Promise<unknown>) => {
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < USERS) await send(`u${++next}@example.test`);
        }),
      );
      if (sink.accepted !== USERS) throw new Error(`baseline: sink got ${sink.accepted}`);
      return performance.now() - started;
    };
    // Herald's own mailer (its SMTP pool, TCP_NODELAY): the transport alone, the floor of a digest run.
    const mailer = createMailer(smtp);
    const baselineMs = await sendAll((to) => mailer.send({ to, subject: message.subject, html: message.html, text: message.text, headers: message.headers }));
    await mailer.close();
    const baselineBytes = sink.bytes;
    // nodemailer's pooled transport, as the first version of this bench measured (Nagle's algorithm on: ~40 ms a message per connection).
    sink.reset();
    const nodemailerMs = await sendAll((to) => transport.sendMail({ ...message, to }));
    transport.close();

    const rate = (ms: number) => Math.round((USERS / ms) * 1000);
    const rows = [
      ["case", "Herald", "baseline", "ratio (Herald / baseline)"],
      [
        `digest run for ${USERS.toLocaleString("en-US")} users (${PER_USER} notifications each) vs Herald's mailer sending one pre-rendered message ${USERS.toLocaleString("en-US")} times`,
        `${Math.round(heraldMs)} ms`,
        `${Math.round(baselineMs)} ms`,
        (heraldMs / baselineMs).toFixed(2),
      ],
      ["throughput (digests/s vs messages/s)", rate(heraldMs).toLocaleString("en-US"), rate(baselineMs).toLocaleString("en-US"), ""],
      ["bytes per message (avg)", String(Math.round(heraldBytes / USERS)), String(Math.round(baselineBytes / USERS)), ""],
      [`same run vs nodemailer's pooled transport sending that message ${USERS.toLocaleString("en-US")} times (reported)`, `${Math.round(heraldMs)} ms`, `${Math.round(nodemailerMs)} ms`, (heraldMs / nodemailerMs).toFixed(2)],
    ];
    const table = rows.map((r, i) => `| ${r.join(" | ")} |${i === 0 ? `\n| ${r.map(() => "---").join(" | ")} |` : ""}`).join("\n");
    console.log(table);

    if (APPEND) {
      const commit = execSync("git rev-parse --short HEAD").toString().trim();
      const date = new Date().toISOString().slice(0, 16).replace("T", " ");
      appendFileSync(
        new URL("./RESULTS.md", import.meta.url),
        `\n## bench/digests.ts: ${date} UTC, commit ${commit}\n\nCommand: \`DATABASE_URL=... node --import tsx bench/digests.ts --users ${USERS} --per-user ${PER_USER}\`\n\n${table}\n\n` +
          `- Herald: \`EmailDigestService.runDue()\` on PostgreSQL: one claim INSERT ... SELECT for all users, leases in batches of 200 (FOR UPDATE SKIP LOCKED), content query, render (HTML + text), store, send through Herald's mailer (its own SMTP pool over nodemailer's SMTPConnection, TCP_NODELAY; ${MAX_CONNECTIONS} connections, ${IN_FLIGHT} in flight) to an smtp-server sink on loopback, mark sent.\n` +
          `- Baseline: Herald's mailer alone sending one of those rendered digests ${USERS.toLocaleString("en-US")} times with the same connections and messages in flight (no database, no rendering); reported beside it, nodemailer's pooled transport doing the same (Nagle's algorithm on its sockets).\n` +
          `- ${describeMachine()}\n`,
      );
    }
  } finally {
    await sink.close();
    await database.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    await admin.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
