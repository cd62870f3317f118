/**
 * A stall after DATA (RFC 1047): the server takes the whole message and then
 * never answers, or drops the connection instead of answering. The client
 * times out, the digest is retried, and the server ends up with at most one
 * extra copy, carrying the same Message-ID (so receiving systems can fold
 * it), counted as a wire duplicate. Everyone else gets exactly one.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { seedDigestUsers, startDigestService } from "./support/digests.js";
import { fault, record } from "./support/figures.js";
import { eventually } from "./support/processes.js";
import { type ScriptedSmtp, copiesByRecipient, startScriptedSmtp } from "./support/smtp.js";

const USERS = 6;
const SMTP_TIMEOUT_MS = 1000;

describe("SMTP stall after DATA (RFC 1047)", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("a message taken and never answered, or answered by a dropped connection, arrives at most twice with one Message-ID", async () => {
    const db: TestDatabase = await openTestDatabase();
    cleanups.push(() => db.cleanup());
    const fixture = await seedDigestUsers(db, "stall", USERS);
    const [stalled, dropped] = [fixture.users[0]!.email, fixture.users[1]!.email];
    const faults = new Map<string, number>();
    // The first transaction for each of two users: one never answered, one dropped.
    const smtp: ScriptedSmtp = await startScriptedSmtp((mail) => {
      const action = mail.to === stalled ? "stall" : mail.to === dropped ? "drop" : "accept";
      if (action === "accept" || faults.has(mail.to)) return "accept";
      faults.set(mail.to, 1);
      return action;
    });
    cleanups.push(() => smtp.close());

    const digests = await startDigestService(db, smtp.port, { pollMs: 200, retryBaseMs: 300, retryCapMs: 1000, smtpTimeoutMs: SMTP_TIMEOUT_MS });
    cleanups.push(() => digests.stop());

    const wanted = new Set(fixture.users.map((u) => u.email));
    const accepted = () => new Set(smtp.received.filter((m) => m.answer === "accepted").map((m) => m.to));
    await smtp.until(() => [...wanted].every((to) => accepted().has(to)), 30_000, "every user's digest accepted");
    // Marked after the server's answer: wait until every digest has left 'pending'.
    await eventually(async () => (await db.query("SELECT 1 FROM email_digests WHERE status = 'pending'")).length === 0, 10_000, "digests settled");
    await digests.stop();
    fault("smtp_stall_after_data");
    fault("smtp_drop_after_data");

    const byRecipient = copiesByRecipient(smtp.received);
    const extra = [...byRecipient.values()].reduce((n, e) => n + e.copies - 1, 0);
    const userDuplicates = [...byRecipient.values()].reduce((n, e) => n + e.messageIds.size - 1, 0);
    record({ checked: USERS * 2, lost: USERS - byRecipient.size, userDuplicates, wireDuplicates: extra });
    process.stdout.write(`smtp stall after DATA: ${smtp.received.length} messages for ${USERS} users, ${extra} extra copies (same Message-ID)\n`);

    expect(byRecipient.size).toBe(USERS);
    for (const u of fixture.users) {
      const e = byRecipient.get(u.email)!;
      // One Message-ID per user; the two faulted users may have one extra copy, nobody more.
      expect(e.messageIds.size).toBe(1);
      expect(e.copies).toBe(u.email === stalled || u.email === dropped ? 2 : 1);
      const text = smtp.received.find((m) => m.to === u.email)!.text;
      for (const t of u.titles) expect(text).toContain(t);
    }
    expect(smtp.received.filter((m) => m.to === stalled).map((m) => m.answer)).toEqual(["stalled", "accepted"]);
    expect(smtp.received.filter((m) => m.to === dropped).map((m) => m.answer)).toEqual(["dropped", "accepted"]);
    const rows = await db.query<{ email_address: string; status: string; attempts: number }>(
      "SELECT email_address, status, attempts FROM email_digests WHERE NOT is_test ORDER BY email_address",
    );
    expect(rows).toHaveLength(USERS);
    for (const r of rows) {
      expect(r.status).toBe("sent");
      expect(r.attempts).toBe(r.email_address === stalled || r.email_address === dropped ? 2 : 1);
    }
  });
});
