import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";

// What a test reads of a failed RPC, the same whether the service runs in memory or on a socket.

/** The error a call failed with; fails the test when it succeeded. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** The fields a google.rpc.BadRequest detail names, in order. */
export function fieldsOf(err: ConnectError): string[] {
  return err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

/** The retry delay a google.rpc.RetryInfo detail asks for, in milliseconds; undefined without one. */
export function retryAfterMs(err: ConnectError): number | undefined {
  const delay = err.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay ? Number(delay.seconds) * 1_000 + delay.nanos / 1e6 : undefined;
}
