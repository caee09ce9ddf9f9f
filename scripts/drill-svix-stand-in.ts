/**
 * The Svix stand-in as a container of the compose drill (deploy/compose.drill.yaml): listens on
 * all of the container's interfaces (the compose network; the host publishes it on loopback only),
 * takes its token from SVIX_TOKEN, keeps every request of a drill in its log (the drill reads the
 * order Svix received each job's events from it), and stops on SIGTERM.
 */
import { startSvixStandIn } from "../src/local/svix-stand-in/index.js";

const standIn = await startSvixStandIn({
  host: "0.0.0.0",
  port: 8071,
  token: process.env.SVIX_TOKEN,
  deliver: false,
  requestLogSize: 200_000,
  maxMessages: 200_000,
});
process.stdout.write(`Svix stand-in listening on ${standIn.url}\n`);
for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.once(signal, () => {
    standIn.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
