import type { TopRow } from "./analyticsData.js";
import { percent, typeLabel } from "./format.js";
import { TypeIcon } from "./TypeIcon.js";

/** The best performing notifications by open rate, as a table that scrolls sideways on phones. */
export function TopNotifications({ rows }: { rows: TopRow[] }) {
  if (rows.length === 0) return <p className="herald-empty">No notifications opened yet.</p>;
  return (
    // On a phone the table scrolls sideways: a focusable, named region lets the keyboard scroll it too.
    // biome-ignore lint/a11y/noNoninteractiveTabindex: axe's scrollable-region-focusable (WCAG 2.1.1) asks for exactly this
    <section className="herald-table-wrap" aria-label="Top performing notifications" tabIndex={0}>
      <table className="herald-table" data-testid="top-notifications">
        <thead>
          <tr>
            <th scope="col">Notification</th>
            <th scope="col">Opened</th>
            <th scope="col">Clicked</th>
            <th scope="col">Open rate</th>
            <th scope="col">Click rate</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id}>
              <td>
                <span className="herald-cell-title">
                  <TypeIcon type={r.type} size={16} /> {r.title}
                </span>
                {r.type && <span className="herald-muted"> · {typeLabel(r.type)}</span>}
              </td>
              <td>{r.opened}</td>
              <td>{r.clicked}</td>
              <td>{percent(r.openRate)}</td>
              <td>{percent(r.clickRate)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
