import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { createLogger } from "../../src/log/logger.js";
import { undoAll } from "../../src/main.js";
import { until } from "../support/poll.js";
import { CapturedLog, startTestService } from "../support/service.js";

// A start that fails half-way (a taken port, a conflicting stream) must undo what it started —
// NATS connection, relay consumer, key watcher — and say why it failed, not why an undo failed.

let nats: NatsServer;
let svix: SvixStandIn;

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false });
});

afterAll(async () => {
  await svix?.close();
  await nats?.dispose();
});

async function natsConnections(): Promise<number> {
  const connz = (await (await fetch(`${nats.monitorUrl}/connz`)).json()) as { num_connections: number };
  return connz.num_connections;
}

describe("a start that fails", () => {
  it("on a taken port reports the port's error and leaves no NATS connection behind", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const start = startTestService(nats.url, {
        JOBHOOKS_ADDR: `127.0.0.1:${port}`,
        JOBHOOKS_RELAY_ENABLED: "true",
        SVIX_TOKEN: svix.token,
        SVIX_SERVER_URL: svix.url,
      });
      await expect(start).rejects.toThrow(/EADDRINUSE|address already in use/);
      // Everything the start opened (publisher, relay, API-key watcher) shared one connection.
      expect(await until("no connection left", async () => (await natsConnections()) === 0)).toBe(true);
    } finally {
      taken.close();
    }
  });

  it("runs every undo step, last first, even when one of them fails", async () => {
    const ran: string[] = [];
    const log = new CapturedLog();
    await undoAll(
      [
        () => ran.push("nats"),
        () => {
          ran.push("relay");
          throw new Error("relay would not stop");
        },
        async () => ran.push("key watcher"),
      ],
      createLogger("warn", log),
    );
    expect(ran).toEqual(["key watcher", "relay", "nats"]);
    expect(log.text()).toContain("relay would not stop");
  });
});
