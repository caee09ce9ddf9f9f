// Publishes one job event to NATS the way any publisher would, for a clone without the `nats` CLI
// (Debian has none, and building it needs Go). Like `nats pub`, with the JetStream acknowledgement:
//
//   node scripts/nats-pub.mjs [--server URL] [--header 'Name: value']… SUBJECT BODY
//
// It publishes through JetStream, so it answers only once the event is stored (or says why not),
// with the repository's own NATS client. The server defaults to $NATS_URL, then nats://127.0.0.1:4222.
import { parseArgs } from "node:util";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";

const USAGE = "usage: node scripts/nats-pub.mjs [--server URL] [--header 'Name: value']… SUBJECT BODY";

function fail(message) {
  process.stderr.write(`nats-pub: ${message}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      server: { type: "string", short: "s" },
      header: { type: "string", short: "H", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (err) {
  fail(`${err.message}\n${USAGE}`);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (positionals.length !== 2) fail(`expected a subject and a body\n${USAGE}`);
const [subject, body] = positionals;
const servers = (values.server ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222").split(",");

const h = natsHeaders();
for (const line of values.header ?? []) {
  const colon = line.indexOf(":");
  if (colon <= 0) fail(`--header must be 'Name: value', not ${JSON.stringify(line)}`);
  h.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
}

let nc;
try {
  nc = await connect({ servers, maxReconnectAttempts: 0, timeout: 5_000, name: "jobhooks nats-pub" });
} catch (err) {
  fail(
    `cannot connect to ${servers.join(",")}: ${err.message} (is \`npm run dev\` running? it prints NATS_URL)`,
  );
}
try {
  const ack = await jetstream(nc).publish(subject, body, { headers: h, timeout: 10_000 });
  process.stdout.write(
    ack.duplicate
      ? `already stored in ${ack.stream} (sequence ${ack.seq}): nothing new\n`
      : `stored in ${ack.stream}, sequence ${ack.seq}\n`,
  );
} catch (err) {
  // No stream captures the subject: nobody answers the publish, which the client reports as
  // "no responders" or as JetStream not being enabled.
  const hint = /no responders|503|not enabled/i.test(String(err.message))
    ? " (does a stream take this subject? jobhooks' stream JOBS takes jobs.<tenant_id>.<job_id>.<status>)"
    : "";
  process.stderr.write(`nats-pub: not stored: ${err.message}${hint}\n`);
  process.exitCode = 1;
} finally {
  await nc.drain();
}
