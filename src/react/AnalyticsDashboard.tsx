/**
 * The guide's analytics dashboard: live headline metrics, engagement trends,
 * performance by type, top notifications, a day/week/month switch and a CSV
 * export. Needs an admin credential (JWT with role "admin" or an API key).
 */
import { useState } from "react";
import { type Interval, exportPath } from "./analyticsData.js";
import { ChannelBreakdown } from "./ChannelBreakdown.js";
import { ExportButton } from "./ExportButton.js";
import { IntervalSwitch } from "./IntervalSwitch.js";
import { MetricCards } from "./MetricCards.js";
import { TopNotifications } from "./TopNotifications.js";
import { TrendsChart } from "./TrendsChart.js";
import { TypeChart } from "./TypeChart.js";
import { useAnalytics } from "./useAnalytics.js";

export interface AnalyticsDashboardProps {
  token: string;
  /** Herald's base URL; defaults to the page's origin. */
  url?: string;
  /** How often the numbers refresh (default 5 s). */
  pollMs?: number;
}

export function AnalyticsDashboard({ token, url, pollMs }: AnalyticsDashboardProps) {
  const [interval, setView] = useState<Interval>("day");
  const { api, data, error, updatedAt } = useAnalytics({ token, ...(url ? { url } : {}), interval, ...(pollMs ? { pollMs } : {}) });
  const stamp = new Date().toISOString().slice(0, 10);
  return (
    <section className="herald-dashboard" data-testid="analytics-dashboard" data-loaded={data !== null}>
      <header className="herald-dash-head">
        <h2>Analytics</h2>
        <div className="herald-dash-controls">
          <IntervalSwitch value={interval} onChange={setView} />
          <ExportButton api={api} path={exportPath(interval)} filename={`herald-events-${stamp}.csv`} />
        </div>
      </header>
      {error && (
        <p className="herald-error" role="alert">
          {error}
        </p>
      )}
      {updatedAt && (
        <p className="herald-muted herald-live" role="status">
          <span className="herald-conn-dot" aria-hidden="true" /> Live · updated {updatedAt.toLocaleTimeString()}
          {data?.asOf && <> · counts every event up to {data.asOf.toLocaleTimeString()}</>}
        </p>
      )}
      {data === null ? (
        !error && <p className="herald-empty">Loading…</p>
      ) : (
        <>
          <MetricCards headline={data.headline} />
          <div className="herald-grid">
            <article className="herald-panel">
              <h3>Engagement trends</h3>
              <TrendsChart points={data.trends} interval={interval} />
            </article>
            <article className="herald-panel">
              <h3>Performance by type</h3>
              <TypeChart rows={data.byType} />
            </article>
          </div>
          <ChannelBreakdown rows={data.byChannel} />
          <article className="herald-panel">
            <h3>Top performing notifications</h3>
            <TopNotifications rows={data.top} />
          </article>
        </>
      )}
    </section>
  );
}
