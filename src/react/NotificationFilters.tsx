import type { ListFilter } from "./api.js";
import { SegmentedControl } from "./SegmentedControl.js";

const FILTERS = [
  { value: "unread", label: "Unread" },
  { value: "all", label: "All" },
  { value: "archived", label: "Archived" },
] as const satisfies readonly { value: ListFilter; label: string }[];

/** Unread / All / Archived as a segmented radio group. */
export function NotificationFilters({ value, onChange }: { value: ListFilter; onChange(f: ListFilter): void }) {
  return <SegmentedControl legend="Show notifications" options={FILTERS} value={value} onChange={onChange} testIdPrefix="filter" />;
}
