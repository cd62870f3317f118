/**
 * Three Herald processes run the digest scheduler against one PostgreSQL
 * database and one SMTP server on loopback. The instance holding the claim is
 * SIGSTOPped in the middle of its batch (some messages delivered, some on the
 * wire, more queued behind them), stays stopped past its lease while the
 * others take the digests over, and is then resumed. Each user gets one e-mail for the window:
 * the resumed holder sends nothing the others sent. The only repeats are the
 * messages the server accepted while the holder was stopped, before it could
 * record them (RFC 1047: no SMTP client can tell); they carry the same
 * Message-ID and are counted as wire duplicates.
 */
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { seedDigestUsers } from "./support/digests.js";
import { fault, record } from "./support/figures.js";
import { type HeraldNode, eventually, scratchDatabase, startNode, stopNode, tempDir } from "./support/processes.js";
import { type ReceivedMail, copiesByRecipient, startScriptedSmtp } from "./support/smtp.js";

const USERS = 40;
const LEASE_MS = 4000;
/** The pooled transport's connections (the mailer's default): messages a holder can have on the wire at once. */
const CONNECTIONS = 5;
/** Accepted at once before the server starts holding its answers: delivered and recorded before the stop. */
const ACCEPT_FIRST = 10;

describe.skipIf(!process.env.DATABASE_URL)("digest claim holder SIGSTOPped past its lease (three processes, PostgreSQL)", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("sends one e-mail per user and window; the resumed holder sends nothing taken over", async () => {
    let holding = true;
    const smtp = await startScriptedSmtp(() => (holding && smtp.received.length >= ACCEPT_FIRST ? "hold" : "accept"));
    cleanups.push(() => smtp.close());
    const database = await scratchDatabase(process.env.DATABASE_URL!);
    cleanups.push(database.drop);
    const dir = tempDir();
    cleanups.push(dir.remove);
    const env = {
      DATABASE_URL: database.url,
      DATA_DIR: dir.dir,
      EMAIL_HOST: "127.0.0.1",
      EMAIL_PORT: String(smtp.port),
      EMAIL_FROM: "Herald <noreply@example.test>",
      HERALD_DIGEST_LEASE_MS: String(LEASE_MS),
      HERALD_DIGEST_POLL_MS: "250",
      HERALD_SMTP_TIMEOUT_MS: "1500",
      HERALD_DIGEST_RETRY_BASE_MS: "500",
      HERALD_DIGEST_RETRY_CAP_MS: "2000",
    };
    const nodes: HeraldNode[] = [];
    cleanups.push(async () => {
      await Promise.all(nodes.map((n) => stopNode(n)));
    });
    await Promise.all([0, 1, 2].map(async () => nodes.push(await startNode(env))));

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    cleanups.push(() => client.end());
    // Seeded once all three schedulers poll: they race for the claim.
    const fixture = await seedDigestUsers(client, "stop", USERS);

    // The first messages go through; then the server holds its answers, so whoever leased the batch
    // has messages on the wire (and more queued behind them) when it is stopped.
    await smtp.until((r) => r.filter((m) => m.answer === "held").length >= CONNECTIONS, 30_000, "a batch on the wire");
    const delivered = smtp.received.filter((m) => m.answer === "accepted").map((m) => m.digestId);
    expect(delivered).toHaveLength(ACCEPT_FIRST);
    // Recorded as soon as accepted (not at the end of the batch), so a takeover does not send them again.
    await eventually(
      async () => (await client.query("SELECT 1 FROM email_digests WHERE id = ANY($1::uuid[]) AND status = 'sent'", [delivered])).rowCount === ACCEPT_FIRST,
      5000,
      "delivered digests marked sent while the batch runs",
    );
    const held = smtp.received.filter((m) => m.answer === "held");
    const leases = await client.query<{ id: string; leased_by: string }>("SELECT id, leased_by FROM email_digests WHERE id = ANY($1::uuid[])", [
      held.map((m) => m.digestId),
    ]);
    const owner = leases.rows.find((r) => r.id === held[0]!.digestId)!.leased_by;
    const pid = Number(/^digests-(\d+)-/.exec(owner)?.[1]);
    const holder = nodes.find((n) => n.proc.child.pid === pid);
    expect(holder, `lease owner ${owner} is one of the three processes`).toBeDefined();
    holder!.proc.child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    fault("sigstop");

    // What the server accepts from now on while the holder cannot record it: the unavoidable repeats.
    const ownedBy = new Map(leases.rows.map((r) => [r.id, r.leased_by]));
    const onTheWire: ReceivedMail[] = held.filter((m) => ownedBy.get(m.digestId) === owner);
    holding = false;
    smtp.releaseHeld();

    // The other two take over once the lease has run out, and finish the window.
    await smtp.until((r) => new Set(r.map((m) => m.to)).size === USERS, 60_000, "every user's digest");
    await eventually(async () => (await client.query("SELECT 1 FROM email_digests WHERE status = 'pending'")).rowCount === 0, 30_000, "digests marked");
    const stoppedMs = Date.now() - stoppedAt;
    const { rows: takenOver } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM email_digests WHERE leased_by IS DISTINCT FROM $1 AND status = 'sent'",
      [owner],
    );

    // Resumed: its stale batch (queued messages, rows it never reached) must go nowhere. Stopping it
    // afterwards awaits its digest run in flight, so anything it would still send has been sent.
    holder!.proc.child.kill("SIGCONT");
    await eventually(async () => (await fetch(`${holder!.baseUrl}/health`)).ok, 10_000, "resumed holder answering");
    await Promise.all(nodes.map((n) => stopNode(n)));

    const byRecipient = copiesByRecipient(smtp.received);
    const repeats = smtp.received.length - byRecipient.size;
    const userDuplicates = [...byRecipient.values()].reduce((n, e) => n + e.messageIds.size - 1, 0);
    const firstIds = new Set<string>();
    const repeatedIds = smtp.received
      .filter((m) => {
        if (firstIds.has(m.messageId)) return true;
        firstIds.add(m.messageId);
        return false;
      })
      .map((m) => m.messageId);
    record({ checked: USERS * fixture.users[0]!.titles.length, lost: USERS - byRecipient.size, userDuplicates, wireDuplicates: repeats });
    process.stdout.write(
      `digest sigstop: holder pid ${pid} stopped ${stoppedMs} ms (lease ${LEASE_MS} ms) with ${onTheWire.length} messages on the wire; ` +
        `${takenOver[0]!.n} digests sent by the other instances; ${smtp.received.length} messages for ${USERS} users, ${repeats} repeats (same Message-ID)\n`,
    );

    expect(stoppedMs).toBeGreaterThan(LEASE_MS);
    expect(takenOver[0]!.n).toBeGreaterThan(0);
    for (const u of fixture.users) {
      const e = byRecipient.get(u.email);
      expect(e, `${u.email} got its digest`).toBeDefined();
      expect(e!.messageIds.size).toBe(1);
      const text = smtp.received.find((m) => m.to === u.email)!.text;
      for (const t of u.titles) expect(text).toContain(t);
    }
    expect(userDuplicates).toBe(0);
    // Only what the server took while the holder was stopped came again, once each.
    expect(new Set(repeatedIds).size).toBe(repeatedIds.length);
    for (const id of repeatedIds) expect(onTheWire.map((m) => m.messageId)).toContain(id);
    expect(repeats).toBeLessThanOrEqual(CONNECTIONS);
    const { rows } = await client.query<{ user_id: string; status: string }>("SELECT user_id, status FROM email_digests WHERE NOT is_test");
    expect(rows).toHaveLength(USERS);
    expect(rows.every((r) => r.status === "sent")).toBe(true);
  });
});
