import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { createHealth, type HealthService } from "../../src/server/health.js";
import { listenOnePort, type OnePortListener, type OnePortTimeouts } from "../../src/server/listener.js";
import { registerReflection } from "../../src/server/reflection.js";

export interface TestServer {
  listener: OnePortListener;
  health: HealthService;
  url: string;
}

/**
 * A real one-port server on loopback with Health, reflection and a stand-in WebhookService (the
 * real one lives elsewhere; here it only has to show a third service on the same port).
 */
export async function startTestServer(
  options: { timeouts?: OnePortTimeouts; webhookService?: Partial<ServiceImpl<typeof WebhookService>> } = {},
): Promise<TestServer> {
  const health = createHealth();
  const handler = connectNodeAdapter({
    routes(router) {
      health.registerOn(router);
      router.service(
        WebhookService,
        options.webhookService ?? {
          getPortalLink: (request) => ({
            url: `https://portal.example/${request.tenantId}`,
            appId: "app_test",
          }),
        },
      );
      registerReflection(router);
    },
    fallback(_request, response) {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found\n");
    },
  });
  const listener = await listenOnePort({
    host: "127.0.0.1",
    port: 0,
    handler,
    timeouts: options.timeouts,
    onClosing: () => health.shutdown(),
  });
  return { listener, health, url: listener.url };
}
