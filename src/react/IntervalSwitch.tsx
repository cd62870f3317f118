import type { Interval } from "./analyticsData.js";
import { SegmentedControl } from "./SegmentedControl.js";

const OPTIONS = [
  { value: "day", label: "Daily" },
  { value: "week", label: "Weekly" },
  { value: "month", label: "Monthly" },
] as const satisfies readonly { value: Interval; label: string }[];

/** Day / week / month view switch. */
export function IntervalSwitch({ value, onChange }: { value: Interval; onChange(v: Interval): void }) {
  return <SegmentedControl legend="Time interval" options={OPTIONS} value={value} onChange={onChange} testIdPrefix="interval" />;
}
