import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { Interval, TrendPoint } from "./analyticsData.js";

const SERIES = [
  { key: "sent", color: "#64748b" },
  { key: "delivered", color: "#1d4ed8" },
  { key: "opened", color: "#15803d" },
  { key: "clicked", color: "#b45309" },
] as const;

function bucketLabel(bucket: string, interval: Interval): string {
  const d = new Date(bucket);
  if (Number.isNaN(d.getTime())) return bucket;
  if (interval === "month") return d.toLocaleDateString(undefined, { month: "short", year: "2-digit", timeZone: "UTC" });
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

/** Engagement over time: sent, delivered, opened and clicked per bucket. */
export function TrendsChart({ points, interval }: { points: TrendPoint[]; interval: Interval }) {
  const data = points.map((p) => ({ ...p, label: bucketLabel(p.bucket, interval) }));
  return (
    <div className="herald-chart" data-testid="trends-chart" data-points={points.length}>
      {points.length === 0 ? (
        <p className="herald-empty">No events in this period.</p>
      ) : (
        <ResponsiveContainer width="100%" height={260}>
          <LineChart data={data} margin={{ top: 8, right: 12, bottom: 0, left: -12 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
            <XAxis dataKey="label" fontSize={12} minTickGap={16} />
            <YAxis allowDecimals={false} fontSize={12} />
            <Tooltip />
            <Legend />
            {SERIES.map((s) => (
              <Line key={s.key} type="monotone" dataKey={s.key} stroke={s.color} strokeWidth={2} dot={points.length < 20} isAnimationActive={false} />
            ))}
          </LineChart>
        </ResponsiveContainer>
      )}
    </div>
  );
}
