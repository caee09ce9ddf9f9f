import {
  createRegistry,
  type DescMessage,
  fromBinary,
  fromJson,
  type JsonValue,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import { file_google_rpc_error_details } from "../../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";

/**
 * What one client saw of one call, in a form every client's output reduces to, so the matrix
 * compares like with like: the numeric code, the message as the client hands it to its caller, each
 * google.rpc detail decoded to its proto3 JSON, and an OK call's response as proto3 JSON.
 */
export interface Seen {
  code: number;
  message: string;
  details: Detail[];
  response?: JsonValue;
  /** Exactly what the client reported (its error text, or its printed JSON), for the report. */
  raw: string;
  /** How long the call took as the client measured it, when known. */
  ms?: number;
}

export interface Detail {
  type: string;
  /** The detail as proto3 JSON when its type is a google.rpc error detail, else base64. */
  value: JsonValue;
}

/** The google.rpc error details, so details and Any fields decode to JSON. */
export const registry = createRegistry(file_google_rpc_error_details);
const errorDetails = registry;

/** One detail from its type name (or `type.googleapis.com/…` URL) and encoded value. */
export function decodeDetail(typeOrUrl: string, value: Uint8Array): Detail {
  const type = typeOrUrl.slice(typeOrUrl.lastIndexOf("/") + 1);
  const desc = errorDetails.getMessage(type);
  if (!desc) return { type, value: Buffer.from(value).toString("base64") };
  return { type, value: toJson(desc, fromBinary(desc, value)) };
}

/** The details of a google.rpc.Status as sent in `grpc-status-details-bin` (base64 or bytes). */
export function detailsOfStatus(bin: string | Uint8Array | undefined): Detail[] {
  if (bin === undefined || bin.length === 0) return [];
  const bytes = typeof bin === "string" ? Buffer.from(bin, "base64") : bin;
  return fromBinary(StatusSchema, bytes).details.map((a) => decodeDetail(a.typeUrl, a.value));
}

/** An OK response as proto3 JSON. */
export function responseOf<D extends DescMessage>(schema: D, message: MessageShape<D>): JsonValue {
  return toJson(schema, message, { registry: errorDetails });
}

/** An OK response as proto3 JSON, from its binary encoding. */
export function responseFromBinary(schema: DescMessage, bytes: string | Uint8Array): JsonValue {
  const b = typeof bytes === "string" ? Buffer.from(bytes, "base64") : bytes;
  return toJson(schema, fromBinary(schema, b), { registry: errorDetails });
}

/** An OK response as proto3 JSON, from any JSON a client printed (re-encoded canonically). */
export function responseFromJson(schema: DescMessage, json: JsonValue): JsonValue {
  return toJson(schema, fromJson(schema, json, { registry: errorDetails }), { registry: errorDetails });
}
