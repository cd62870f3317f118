import { useId } from "react";

export interface SegmentedOption<T extends string> {
  value: T;
  label: string;
}

/**
 * A segmented control that is a real radio group: a fieldset named by its
 * legend, one labelled radio per option, so Tab reaches the group and the
 * arrow keys move the choice (the browser's own radio behaviour).
 * Each radio carries `data-testid="<testIdPrefix>-<value>"`.
 */
export function SegmentedControl<T extends string>({
  legend,
  options,
  value,
  onChange,
  testIdPrefix,
}: {
  legend: string;
  options: readonly SegmentedOption<T>[];
  value: T;
  onChange(value: T): void;
  testIdPrefix: string;
}) {
  const name = useId();
  return (
    <fieldset className="herald-segmented">
      <legend className="herald-sr-only">{legend}</legend>
      {options.map((o) => (
        <label key={o.value} className={value === o.value ? "active" : undefined}>
          <input
            type="radio"
            name={name}
            value={o.value}
            checked={value === o.value}
            onChange={() => onChange(o.value)}
            data-testid={`${testIdPrefix}-${o.value}`}
          />
          {o.label}
        </label>
      ))}
    </fieldset>
  );
}
