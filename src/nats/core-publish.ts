import { type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";

/** A core NATS publish with headers (e.g. `Nats-Msg-Id`, which a capturing stream de-duplicates on). */
export function publishWithHeaders(
  nc: NatsConnection,
  subject: string,
  body: Uint8Array,
  headers: Record<string, string>,
): void {
  const h = natsHeaders();
  for (const [name, value] of Object.entries(headers)) if (value !== "") h.set(name, value);
  nc.publish(subject, body, { headers: h });
}
