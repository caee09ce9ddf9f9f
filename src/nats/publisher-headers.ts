import { type MsgHdrs, headers as natsHeaders } from "@nats-io/transport-node";
import { isPublisherControlHeader } from "../events/wire-names.js";

/**
 * A copy of the headers a publisher set, without its control headers (`isPublisherControlHeader`):
 * what a dead letter and a replay carry onward. The one filter both use, so they cannot disagree.
 */
export function publisherHeaders(original: Iterable<[string, string[]]> | undefined): MsgHdrs {
  const h = natsHeaders();
  for (const [key, values] of original ?? []) {
    if (isPublisherControlHeader(key)) continue;
    for (const v of values) h.append(key, v);
  }
  return h;
}
