/**
 * Digest fixtures for the battery: users in a zone where the daily 08:00
 * window closed about twelve hours ago (so a run never straddles a window
 * boundary, whatever the time of day), each with notifications inside the
 * window that the schedulers (real clocks) must now send.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../../../src/config/index.js";
import type { Database } from "../../../src/db/index.js";
import { type DigestTuning, EmailDigestService, dueWindow } from "../../../src/digests/index.js";
import { unsubscribeKey } from "../../../src/mail/index.js";
import { createMetricsRegistry, silentLogger, systemClock } from "../../../src/observability/index.js";

interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * A digest service in this process on the real clock, sending to the SMTP
 * server on `smtpPort`, with its loop started; `stop()` stops it (awaiting its
 * run in flight) and removes its data directory.
 */
export async function startDigestService(
  database: Database,
  smtpPort: number,
  tuning: Partial<DigestTuning>,
): Promise<{ service: EmailDigestService; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "herald-rel-digests-"));
  const config = loadConfig({ NODE_ENV: "test", APP_URL: "https://app.example.test", DATA_DIR: dataDir, LOG_LEVEL: "silent" });
  const service = new EmailDigestService(
    { host: "127.0.0.1", port: smtpPort, secure: false, from: "Herald <noreply@example.test>" },
    { database, clock: systemClock, logger: silentLogger, config, metrics: createMetricsRegistry(false), unsubscribeKey: unsubscribeKey("reliability-unsubscribe-secret-0123456789") },
    tuning,
  );
  await service.initializeScheduledJobs();
  return {
    service,
    async stop() {
      await service.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A fixed-offset zone (no DST) where it is about 20:00 now: the last 08:00 is ~12 h back, the next ~12 h ahead. */
export function eveningZone(now = new Date()): string {
  let offset = 20 - now.getUTCHours();
  if (offset > 14) offset -= 24;
  if (offset === 0) return "UTC";
  // POSIX sign: Etc/GMT-5 is five hours ahead of UTC.
  return `Etc/GMT${offset > 0 ? "-" : "+"}${Math.abs(offset)}`;
}

export interface DigestFixture {
  zone: string;
  window: { start: Date; end: Date };
  users: { id: string; email: string; titles: string[] }[];
}

/** Inserts `n` users with `perUser` unread notifications each inside the due daily window. */
export async function seedDigestUsers(db: Queryable, prefix: string, n: number, perUser = 2): Promise<DigestFixture> {
  const zone = eveningZone();
  const window = dueWindow("daily", zone, new Date());
  const users = Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    email: `${prefix}-${i}@example.test`,
    titles: Array.from({ length: perUser }, (_, j) => `${prefix} ${i} item ${j}`),
  }));
  await db.query(
    "INSERT INTO users (id, email, timezone) SELECT u, u || '@example.test', $2 FROM unnest($1::text[]) u",
    [users.map((u) => u.id), zone],
  );
  const at = new Date(window.end.getTime() - 3_600_000).toISOString();
  await db.query(
    `INSERT INTO notifications (user_id, type, priority, title, message, created_at)
     SELECT x.u, 'new_message', 'normal', x.t, 'digest check', $3 FROM unnest($1::text[], $2::text[]) AS x(u, t)`,
    [users.flatMap((u) => u.titles.map(() => u.id)), users.flatMap((u) => u.titles), at],
  );
  return { zone, window, users };
}
