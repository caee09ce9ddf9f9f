/**
 * An exponentially weighted moving average over the last `span` observations or so: a typical
 * value that follows change within a few dozen samples and costs nothing to keep.
 */
export class Ewma {
  #value: number | undefined;
  readonly #alpha: number;

  constructor(span: number) {
    this.#alpha = 2 / (span + 1);
  }

  /** Undefined until the first observation. */
  get value(): number | undefined {
    return this.#value;
  }

  observe(x: number): void {
    this.#value = this.#value === undefined ? x : this.#value + this.#alpha * (x - this.#value);
  }
}
