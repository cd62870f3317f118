/**
 * A map from key to one or more values where most keys hold exactly one:
 * that value is stored bare, a Set only from the second on (an idle
 * connection should cost a map slot, not a Set).
 */
export class SlimMultiMap<K, V> {
  private readonly map = new Map<K, V | Set<V>>();
  private count = 0;

  /** Values across all keys. */
  get size(): number {
    return this.count;
  }

  /** Distinct keys. */
  get keyCount(): number {
    return this.map.size;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** The key's value(s): one bare value or a Set of two or more. */
  get(key: K): V | Set<V> | undefined {
    return this.map.get(key);
  }

  /** Returns false when the value was already there. */
  add(key: K, value: V): boolean {
    const current = this.map.get(key);
    if (current === undefined) this.map.set(key, value);
    else if (current instanceof Set) {
      if (current.has(value)) return false;
      current.add(value);
    } else if (current === value) return false;
    else this.map.set(key, new Set([current, value]));
    this.count += 1;
    return true;
  }

  /** Returns false when the value was not there. */
  remove(key: K, value: V): boolean {
    const current = this.map.get(key);
    if (current === value) this.map.delete(key);
    else if (current instanceof Set && current.delete(value)) {
      if (current.size === 1) this.map.set(key, current.values().next().value!);
    } else return false;
    this.count -= 1;
    return true;
  }

  /** Removes the key and returns its values. */
  take(key: K): V[] {
    const current = this.map.get(key);
    if (current === undefined) return [];
    this.map.delete(key);
    const values = current instanceof Set ? [...current] : [current];
    this.count -= values.length;
    return values;
  }

  values(): V[] {
    return [...this.map.values()].flatMap((v) => (v instanceof Set ? [...v] : [v]));
  }
}
