/**
 * What PostgreSQL can store as text or as a jsonb string: it refuses NUL, and
 * a lone UTF-16 surrogate has no UTF-8 form. One definition for every place
 * that refuses such text (request bodies, analytics input, token subjects) or
 * strips it (text a peer chose).
 */
const NUL = "\0";

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** False when `s` holds a NUL or an unpaired surrogate. */
export function isStorableText(s: string): boolean {
  return !s.includes(NUL) && !LONE_SURROGATE.test(s);
}

/** `s` without its NULs and unpaired surrogates (a surrogate is judged by its neighbours in `s` as given). */
export function withoutUnstorable(s: string): string {
  return s.replace(LONE_SURROGATES, "").replaceAll(NUL, "");
}
