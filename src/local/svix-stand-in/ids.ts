import { randomBytes } from "node:crypto";

/**
 * Svix ids are a prefix plus 27 base62 characters (KSUID-shaped; the OpenAPI patterns say
 * `^msg_[A-Za-z0-9]{27}$`). Ours start with the creation time and a counter so that they sort by
 * creation, which is what list iterators rely on: "the items after this id" is a string comparison.
 */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TIME_CHARS = 8; // 62^8 ms ≈ 6,900 years
const COUNTER_CHARS = 4;
const RANDOM_CHARS = 27 - TIME_CHARS - COUNTER_CHARS;
const COUNTER_SPAN = 62 ** COUNTER_CHARS;

// One syscall per few hundred ids: message creation is the hot path and crypto.randomBytes(15)
// per id would dominate it.
let pool = randomBytes(4096);
let poolOffset = 0;
let counter = 0;

function base62(value: number, width: number): string {
  let out = "";
  let rest = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

/** Random base62 text; the modulo bias is irrelevant for ids and tokens that only need to be unique. */
export function randomBase62(length: number): string {
  if (poolOffset + length > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[(pool[poolOffset++] as number) % 62];
  return out;
}

export type IdPrefix = "app" | "msg" | "ep" | "atmpt";

export function newId(prefix: IdPrefix, now = Date.now()): string {
  counter = (counter + 1) % COUNTER_SPAN;
  return `${prefix}_${base62(now, TIME_CHARS)}${base62(counter, COUNTER_CHARS)}${randomBase62(RANDOM_CHARS)}`;
}
