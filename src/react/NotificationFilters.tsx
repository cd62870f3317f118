import type { ListFilter } from "./api.js";

const FILTERS: { value: ListFilter; label: string }[] = [
  { value: "unread", label: "Unread" },
  { value: "all", label: "All" },
  { value: "archived", label: "Archived" },
];

/** Unread / All / Archived as a segmented control. */
export function NotificationFilters({ value, onChange }: { value: ListFilter; onChange(f: ListFilter): void }) {
  return (
    <div className="herald-segmented" role="tablist" aria-label="Filter notifications">
      {FILTERS.map((f) => (
        <button
          key={f.value}
          type="button"
          role="tab"
          aria-selected={value === f.value}
          className={value === f.value ? "active" : ""}
          onClick={() => onChange(f.value)}
          data-testid={`filter-${f.value}`}
        >
          {f.label}
        </button>
      ))}
    </div>
  );
}
