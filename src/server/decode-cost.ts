import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/**
 * What decoding a request may cost on the heap, estimated from its bytes before it is decoded, so
 * the shared memory budget (memory-budget.ts) can refuse what would not fit instead of crashing.
 *
 * The cost of a decoded message is driven by how many values it holds, not by its size: tiny map
 * entries cost many times their bytes as objects, large strings little more than theirs
 * (docs/operations.md, "Limits on the API port", the memory budget). So values are counted —
 * JSON by its separators, protobuf by walking its fields against the schema without allocating —
 * and each costs a measured number of heap bytes besides the bytes themselves (2 per byte: strings
 * may be UTF-16, and JSON's text is held while it is parsed).
 */

/**
 * Heap bytes per counted value, as measured for the memory budget (docs/operations.md, "Limits on
 * the API port": the smallest heap that decodes bodies of tiny values, with unique keys).
 */
export const JSON_BYTES_PER_VALUE = 96;
export const PROTO_BYTES_PER_VALUE = 40;

export type BodyEncoding = "json" | "proto" | "compressed";

export function decodeCostOf(
  body: Uint8Array,
  encoding: BodyEncoding,
  input: DescMessage,
  maxBytes: number,
): number {
  if (encoding === "compressed") {
    // Unknown until inflated; Connect inflates at most the method's limit, and the worst shape of
    // that many bytes is what may be decoded.
    return maxBytes * 2 + Math.ceil(maxBytes / 2) * PROTO_BYTES_PER_VALUE;
  }
  if (encoding === "json") return body.byteLength * 2 + jsonValues(body) * JSON_BYTES_PER_VALUE;
  return body.byteLength * 2 + protoValues(body, input) * PROTO_BYTES_PER_VALUE;
}

/** `,` `:` `[` `{` each start a value or a member. Inside strings too: an over-estimate, never under. */
function jsonValues(body: Uint8Array): number {
  let n = 1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === 0x2c || c === 0x3a || c === 0x5b || c === 0x7b) n++;
  }
  return n;
}

/**
 * Values in gRPC / gRPC-Web envelopes or a bare Connect message: every field counts one, and
 * message-typed fields are walked into. A malformed body counts as its worst case (one value per
 * two bytes): it will be refused by the decoder, but must not be under-counted first.
 */
function protoValues(body: Uint8Array, input: DescMessage): number {
  try {
    return isEnveloped(body)
      ? enveloped(body, input)
      : fieldsOf(new BinaryReader(body), body.length, input, 0);
  } catch {
    return Math.ceil(body.length / 2);
  }
}

function isEnveloped(body: Uint8Array): boolean {
  // A gRPC envelope: flags byte 0/1 (0x80 marks gRPC-Web trailers), then a big-endian length
  // that fits. A bare protobuf message never starts with byte 0 (field number 0 does not exist).
  if (body.length < 5 || (body[0] !== 0 && body[0] !== 1)) return false;
  const len =
    ((body[1] as number) << 24) |
    ((body[2] as number) << 16) |
    ((body[3] as number) << 8) |
    (body[4] as number);
  return len >= 0 && 5 + len <= body.length;
}

function enveloped(body: Uint8Array, input: DescMessage): number {
  let n = 0;
  let pos = 0;
  while (pos + 5 <= body.length) {
    const flags = body[pos] as number;
    const len = new DataView(body.buffer, body.byteOffset + pos + 1, 4).getUint32(0);
    const message = body.subarray(pos + 5, pos + 5 + len);
    // Compressed (bit 0) is not walked: count its worst case.
    n +=
      flags & 1
        ? Math.ceil(message.length / 2)
        : fieldsOf(new BinaryReader(message), message.length, input, 0);
    pos += 5 + len;
  }
  return n;
}

const MAX_DEPTH = 64;

function fieldsOf(reader: BinaryReader, end: number, desc: DescMessage | undefined, depth: number): number {
  if (depth > MAX_DEPTH) throw new Error("too deep");
  let n = 0;
  while (reader.pos < end) {
    const [no, wireType] = reader.tag();
    n++;
    const field = desc?.fields.find((f) => f.number === no);
    const nested = wireType === WireType.LengthDelimited ? nestedMessage(field) : undefined;
    if (nested === undefined) {
      reader.skip(wireType, no);
      continue;
    }
    const len = reader.uint32();
    const stop = reader.pos + len;
    if (stop > end) throw new Error("truncated");
    n +=
      nested === "map-entry"
        ? mapEntry(reader, stop, field as DescField, depth)
        : fieldsOf(reader, stop, nested, depth + 1);
    reader.pos = stop;
  }
  return n;
}

function nestedMessage(field: DescField | undefined): DescMessage | "map-entry" | undefined {
  if (!field) return undefined;
  if (field.fieldKind === "message") return field.message;
  if (field.fieldKind === "list" && field.listKind === "message") return field.message;
  if (field.fieldKind === "map") return "map-entry";
  return undefined;
}

/** A map entry: key (1) and value (2); a message value is walked into. */
function mapEntry(reader: BinaryReader, end: number, field: DescField, depth: number): number {
  const value = field.fieldKind === "map" && field.mapKind === "message" ? field.message : undefined;
  let n = 0;
  while (reader.pos < end) {
    const [no, wireType] = reader.tag();
    n++;
    if (no === 2 && value && wireType === WireType.LengthDelimited) {
      const len = reader.uint32();
      const stop = reader.pos + len;
      if (stop > end) throw new Error("truncated");
      n += fieldsOf(reader, stop, value, depth + 1);
      reader.pos = stop;
    } else {
      reader.skip(wireType, no);
    }
  }
  return n;
}
