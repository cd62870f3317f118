import type { Interval } from "./analyticsData.js";

const OPTIONS: { value: Interval; label: string }[] = [
  { value: "day", label: "Daily" },
  { value: "week", label: "Weekly" },
  { value: "month", label: "Monthly" },
];

/** Day / week / month view switch. */
export function IntervalSwitch({ value, onChange }: { value: Interval; onChange(v: Interval): void }) {
  return (
    <div className="herald-segmented" role="tablist" aria-label="Time interval">
      {OPTIONS.map((o) => (
        <button
          key={o.value}
          type="button"
          role="tab"
          aria-selected={value === o.value}
          className={value === o.value ? "active" : ""}
          onClick={() => onChange(o.value)}
          data-testid={`interval-${o.value}`}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}
