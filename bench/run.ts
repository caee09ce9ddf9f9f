/**
 * `npm run bench -- <name>`: benchmarks, printed as tables. Not tests: timing goals live here.
 *   relay           the relay against a bare consume+POST+ack baseline (BENCH_SCALE=0.1 for a quick run)
 *   svix-stand-in   message.create throughput of the Svix stand-in
 *   publish         PublishJobEvent(s) over gRPC and Connect JSON beside a minimal grpc-js server
 *                   and raw JetStream publishes (BENCH_SCALE enlarges, BENCH_PROFILE=1 profiles),
 *                   then the attack table below (BENCH_ATTACK=0 skips it)
 *   attack          peak RSS of a replica with the image's heap flags under issue 20's rows 1–3
 *   fairness        small tenants' latency beside a burst, under Svix's rate limit and beside a
 *                   failing tenant, against the relay before fair scheduling (BENCH_BURSTS sizes)
 */
const which = process.argv[2] ?? "relay";
const benches: Record<string, () => Promise<unknown>> = {
  relay: () => import("./relay.js"),
  publish: async () => {
    await import("./publish.js");
    if (process.env.BENCH_ATTACK !== "0") await (await import("./attack.js")).runAttackBench();
  },
  attack: async () => (await import("./attack.js")).runAttackBench(),
  fairness: () => import("./fairness.js"),
  "svix-stand-in": async () => {
    const { runSvixStandInBench } = await import("./svix-stand-in.js");
    const rows = await runSvixStandInBench(Number(process.argv[3] ?? 5));
    console.log("Svix stand-in: message.create, delivery off, keep-alive clients on loopback");
    console.table(rows);
  },
};
const run = benches[which];
if (!run) {
  console.error(`unknown benchmark "${which}": one of ${Object.keys(benches).join(", ")}`);
  process.exit(1);
}
await run();
