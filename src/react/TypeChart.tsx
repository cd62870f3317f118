import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { TypeRow } from "./analyticsData.js";
import { typeLabel } from "./format.js";

/** Open and click rate per notification type. */
export function TypeChart({ rows: all }: { rows: TypeRow[] }) {
  // Types with nothing sent in the period would only add empty groups.
  const rows = all.filter((r) => r.sent > 0 || r.delivered > 0);
  const data = rows.map((r) => ({ ...r, label: typeLabel(r.type) }));
  return (
    <div className="herald-chart" data-testid="type-chart" data-rows={rows.length}>
      {rows.length === 0 ? (
        <p className="herald-empty">No notifications in this period.</p>
      ) : (
        <ResponsiveContainer width="100%" height={260}>
          <BarChart data={data} margin={{ top: 8, right: 12, bottom: 0, left: 8 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
            <XAxis dataKey="label" fontSize={11} interval={0} angle={-20} textAnchor="end" height={50} />
            <YAxis unit="%" domain={[0, 100]} fontSize={12} />
            <Tooltip formatter={(v) => `${Number(v).toFixed(2)}%`} />
            <Legend />
            <Bar dataKey="deliveryRate" name="Delivery rate" fill="#1d4ed8" isAnimationActive={false} />
            <Bar dataKey="openRate" name="Open rate" fill="#15803d" isAnimationActive={false} />
            <Bar dataKey="clickRate" name="Click rate" fill="#b45309" isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      )}
    </div>
  );
}
