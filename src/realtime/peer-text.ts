/**
 * Text a peer chose (close reasons, user agents) on its way to the database:
 * PostgreSQL refuses NUL in text, and a lone UTF-16 surrogate has no UTF-8
 * form, so both are removed; the rest is cut to a bound so one peer cannot
 * store kilobytes per row.
 */
import { withoutUnstorable } from "../db/index.js";

export function storableText(value: string, max: number): string;
export function storableText(value: string | null | undefined, max: number): string | null;
export function storableText(value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) return null;
  let text = withoutUnstorable(value);
  if (text.length > max) {
    text = text.slice(0, max);
    // Never end on the first half of a pair that the cut split.
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) text = text.slice(0, -1);
  }
  return text;
}
