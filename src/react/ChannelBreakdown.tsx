/**
 * The dashboard's per-channel table: sent, delivered and failed for the
 * WebSocket (in-app), e-mail, browser push, SMS and the digest e-mails, from
 * the `byChannel` of GET /api/analytics/overview over the view's window (fetched once with
 * the rest of the dashboard)
 * (docs/delivery.md, Analytics). Only the WebSocket reports deliveries (the
 * client's ack); for the others a delivery is shown only when one was
 * tracked, else "not reported". Digests count per e-mail, not per notification.
 */

const CHANNELS = [
  { channel: "in_app", label: "In-app (WebSocket)", reportsDelivery: true },
  { channel: "email", label: "E-mail", reportsDelivery: false },
  { channel: "push", label: "Browser push", reportsDelivery: false },
  { channel: "sms", label: "SMS", reportsDelivery: false },
  { channel: "digest", label: "Digest e-mails", reportsDelivery: false },
] as const;

export interface ChannelRow {
  channel: string;
  label: string;
  sent: number;
  /** null: the channel does not report deliveries and none was tracked. */
  delivered: number | null;
  failed: number;
}

const count = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** One row per channel, in a fixed order, from a REST answer's `byChannel` (missing channels count zero). */
export function toChannelRows(byChannel: unknown): ChannelRow[] {
  const all = (byChannel && typeof byChannel === "object" ? byChannel : {}) as Record<string, Record<string, unknown> | undefined>;
  return CHANNELS.map(({ channel, label, reportsDelivery }) => {
    const c = all[channel] ?? {};
    const delivered = count(c.delivered);
    return { channel, label, sent: count(c.sent), delivered: reportsDelivery || delivered > 0 ? delivered : null, failed: count(c.failed) };
  });
}

export function ChannelTable({ rows }: { rows: ChannelRow[] }) {
  return (
    <div className="herald-table-wrap">
      <table className="herald-table" data-testid="channel-breakdown">
        <thead>
          <tr>
            <th scope="col">Channel</th>
            <th scope="col">Sent</th>
            <th scope="col">Delivered</th>
            <th scope="col">Failed</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.channel} data-channel={r.channel}>
              <th scope="row">{r.label}</th>
              <td>{r.sent.toLocaleString()}</td>
              <td>{r.delivered === null ? "not reported" : r.delivered.toLocaleString()}</td>
              <td>{r.failed.toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The panel: the rows come with the dashboard's one overview request (analyticsData.ts). */
export function ChannelBreakdown({ rows }: { rows: ChannelRow[] }) {
  return (
    <article className="herald-panel">
      <h3>By channel</h3>
      <ChannelTable rows={rows} />
    </article>
  );
}
