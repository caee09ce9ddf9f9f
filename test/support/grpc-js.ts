import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/**
 * A @grpc/grpc-js client of WebhookService built the way the README shows a customer building it:
 * from the repo's own .proto at run time (no generated code), camelCase fields, enums and 64-bit
 * integers as strings. `T` names the methods a test calls.
 */
export function grpcJsWebhookClient<T>(serviceUrl: string): grpc.Client & T {
  const def = protoLoader.loadSync("jobhooks/v1/webhooks.proto", {
    includeDirs: [path.resolve("proto")],
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    jobhooks: { v1: { WebhookService: grpc.ServiceClientConstructor } };
  };
  return new pkg.jobhooks.v1.WebhookService(
    new URL(serviceUrl).host,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & T;
}
