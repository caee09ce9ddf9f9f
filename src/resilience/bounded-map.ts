/**
 * A Map that never holds more than `max` entries: writing a key makes it the newest, and past
 * `max` the least recently written entry is forgotten. Reads do not reorder, so a hot read path
 * costs one Map look-up. Every cache or memory of the service that strangers' input can grow
 * (credential look-ups, tenants' Svix applications, jobs recently relayed) is one of these.
 *
 * Hand-written rather than a library (lru-cache, quick-lru): a JavaScript Map already iterates in
 * insertion order, so delete-then-set and evicting the first key is the whole algorithm, and none
 * of the callers wants read-recency, TTLs or sizes by weight.
 */
export class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>();

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`a BoundedMap holds at least one entry (got ${max})`);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** Stores `value` as the newest entry, forgetting the oldest ones past `max`. */
  set(key: K, value: V): this {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  /** Oldest written first. Deleting while iterating is allowed, as with a Map. */
  entries(): MapIterator<[K, V]> {
    return this.#entries.entries();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#entries.entries();
  }
}
