/**
 * Long SMTP outages lose no digest (issue #14.6): a refused or timed-out
 * connection never carried the message, so it is not a delivery attempt; the
 * digest keeps retrying with a capped backoff for as long as the outage lasts
 * and is sent once when the server is back. Time is driven by a manual clock
 * (default tuning: 5 attempts, 1 min doubling to a 1 h cap), so hours of
 * outage take a second.
 */
import { type Server, createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EmailDigestService, MAX_ATTEMPTS } from "../../src/digests/index.js";
import { ManualClock } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";
import { type SmtpSink, addNotification, addUser, digestDeps, digestRows, resetDigestTables, smtpFor, startSmtpSink } from "./support.js";

const T = new Date("2025-06-10T08:00:00Z");
const MINUTE = 60_000;

/** A port that refuses connections: listen, note the port, close. */
async function refusingPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("digests across a long SMTP outage", () => {
  let database: TestDatabase;
  let sink: SmtpSink;
  const services: EmailDigestService[] = [];
  const servers: Server[] = [];

  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database.cleanup());
  beforeEach(async () => {
    await resetDigestTables(database);
    sink = await startSmtpSink();
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((s) => s.stop()));
    for (const s of servers.splice(0)) s.close();
    await sink.close();
  });

  /** Runs the scheduler every minute of `minutes` against `service`, returning the clock's end. */
  async function runEveryMinute(service: EmailDigestService, clock: ManualClock, minutes: number): Promise<void> {
    for (let i = 0; i < minutes; i++) {
      await service.runDue(clock.now());
      clock.advance(MINUTE);
    }
  }

  it.each([
    ["refused", 20],
    ["refused", 180],
    ["timed out (accepts, never greets)", 20],
  ] as const)("connections %s for %i minutes: not counted as attempts, then sent once when SMTP is back", async (kind, minutes) => {
    await addUser(database, "away");
    await addNotification(database, "away", "2025-06-10T07:00:00Z", { title: "kept through the outage" });
    const clock = new ManualClock(T);
    let port: number;
    if (kind === "refused") port = await refusingPort();
    else {
      // Accepts the TCP connection and says nothing: the greeting times out.
      const silent = createServer(() => undefined);
      servers.push(silent);
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      port = (silent.address() as AddressInfo).port;
    }
    const down = new EmailDigestService({ ...smtpFor(sink), port, timeoutMs: 150 }, digestDeps(database, clock));
    services.push(down);
    await runEveryMinute(down, clock, minutes);

    const [during] = await digestRows(database, "away");
    expect(during).toMatchObject({ status: "pending", attempts: 0 });
    // Backoff capped at the tuning's cap (1 h), so the return is noticed within the hour.
    expect(during!.next_attempt_at!.getTime() - clock.now().getTime()).toBeLessThanOrEqual(72 * MINUTE);

    const up = new EmailDigestService(smtpFor(sink), digestDeps(database, clock));
    services.push(up);
    await runEveryMinute(up, clock, 75);
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.text).toContain("kept through the outage");
    const [after] = await digestRows(database, "away");
    expect(after).toMatchObject({ status: "sent", attempts: 1 });
  });

  it(`a server that answers (421 after DATA) still counts: given up after ${MAX_ATTEMPTS} attempts`, async () => {
    sink.refuse({ stage: "data", code: 421 });
    await addUser(database, "busy");
    await addNotification(database, "busy", "2025-06-10T07:00:00Z");
    const clock = new ManualClock(T);
    const s = new EmailDigestService(smtpFor(sink), digestDeps(database, clock));
    services.push(s);
    await runEveryMinute(s, clock, 60);
    const [row] = await digestRows(database, "busy");
    expect(row).toMatchObject({ status: "failed", attempts: MAX_ATTEMPTS });
  });
});
