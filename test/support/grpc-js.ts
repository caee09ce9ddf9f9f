import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * WebhookService as @grpc/grpc-js loads it from the repo's own .proto at run time (no generated
 * code): camelCase fields, enums and 64-bit integers as strings, the way the README shows a
 * customer building a client. Its `.service` is the definition a grpc-js server serves.
 */
export function loadWebhookService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync("jobhooks/v1/webhooks.proto", {
    includeDirs: [path.resolve("proto")],
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    jobhooks: { v1: { WebhookService: grpc.ServiceClientConstructor } };
  };
  return pkg.jobhooks.v1.WebhookService;
}

/** A @grpc/grpc-js client of WebhookService (see loadWebhookService). `T` names the methods a test calls. */
export function grpcJsWebhookClient<T>(serviceUrl: string): grpc.Client & T {
  const Service = loadWebhookService();
  return new Service(new URL(serviceUrl).host, grpc.credentials.createInsecure()) as unknown as grpc.Client &
    T;
}
