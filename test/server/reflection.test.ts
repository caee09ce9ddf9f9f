import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema as ServerReflectionRequestSchemaV1alpha,
  ServerReflectionResponseSchema as ServerReflectionResponseSchemaV1alpha,
  ServerReflection as ServerReflectionV1alpha,
} from "../../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { answerReflection, indexDescriptors } from "../../src/server/reflection.js";
import { startTestServer, type TestServer } from "./one-port-server.js";

const buf = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.listener.close({ graceMs: 2_000 });
});

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    buf,
    ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args],
    {
      timeout: 20_000,
    },
  );
  return stdout;
}

/** One request on a fresh reflection stream, v1 unless said otherwise. */
async function reflect(
  request: MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"],
  version: "v1" | "v1alpha" = "v1",
): Promise<ServerReflectionResponse["messageResponse"]> {
  const transport = createGrpcTransport({ baseUrl: server.url });
  const asked = create(ServerReflectionRequestSchema, { host: "test", messageRequest: request });
  if (version === "v1") {
    const client = createClient(ServerReflection, transport);
    return (await firstAnswer(client.serverReflectionInfo(just(asked), { timeoutMs: 5_000 })))
      .messageResponse;
  }
  // The same bytes under the v1alpha package: the two are wire-identical.
  const client = createClient(ServerReflectionV1alpha, transport);
  const askedV1alpha = fromBinary(
    ServerReflectionRequestSchemaV1alpha,
    toBinary(ServerReflectionRequestSchema, asked),
  );
  const answer = await firstAnswer(client.serverReflectionInfo(just(askedV1alpha), { timeoutMs: 5_000 }));
  return fromBinary(ServerReflectionResponseSchema, toBinary(ServerReflectionResponseSchemaV1alpha, answer))
    .messageResponse;
}

async function* just<T>(message: T): AsyncIterable<T> {
  yield message;
}

async function firstAnswer<T extends { validHost: string }>(responses: AsyncIterable<T>): Promise<T> {
  for await (const response of responses) {
    expect(response.validHost).toBe("test");
    return response;
  }
  throw new Error("the reflection stream ended without an answer");
}

function fileNamesIn(answer: ServerReflectionResponse["messageResponse"]): string[] {
  if (answer.case !== "fileDescriptorResponse") throw new Error(`expected files, got ${answer.case}`);
  return answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

describe("server reflection", () => {
  it("buf curl lists every service without local schemas", async () => {
    const listed = (await bufCurl("--list-services", server.url)).trim().split("\n").sort();
    expect(listed).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "jobhooks.v1.WebhookService",
    ]);
  });

  it("buf curl calls Health.Check with the schema it learned by reflection", async () => {
    const output = await bufCurl("-d", "{}", `${server.url}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(output)).toEqual({ status: "SERVING" });
  });

  it("buf curl calls a method whose messages import well-known types", async () => {
    const output = await bufCurl(
      "-d",
      '{"tenant_id":"acme"}',
      `${server.url}/jobhooks.v1.WebhookService/GetPortalLink`,
    );
    expect(JSON.parse(output)).toEqual({ url: "https://portal.example/acme", appId: "app_test" });
  });

  it("a file is answered together with every file it imports", async () => {
    const names = fileNamesIn(await reflect({ case: "fileContainingSymbol", value: "jobhooks.v1.JobEvent" }));
    expect(names[0]).toBe("jobhooks/v1/webhooks.proto");
    expect(names).toEqual(
      expect.arrayContaining([
        "google/protobuf/duration.proto",
        "google/protobuf/struct.proto",
        "google/protobuf/timestamp.proto",
      ]),
    );
  });

  it.each([
    "grpc.health.v1.Health",
    "grpc.health.v1.Health.Watch",
    "grpc.health.v1.HealthCheckResponse",
    "grpc.health.v1.HealthCheckResponse.ServingStatus",
    "grpc.health.v1.HealthListResponse.StatusesEntry",
    ".grpc.health.v1.HealthCheckRequest",
  ])("the symbol %s is found in health/v1/health.proto", async (symbol) => {
    const names = fileNamesIn(await reflect({ case: "fileContainingSymbol", value: symbol }));
    expect(names).toEqual(["health/v1/health.proto"]);
  });

  it("a file is found by its name", async () => {
    const names = fileNamesIn(
      await reflect({ case: "fileByFilename", value: "google/protobuf/timestamp.proto" }),
    );
    expect(names).toEqual(["google/protobuf/timestamp.proto"]);
  });

  it("an unknown symbol, file or extension is NOT_FOUND", async () => {
    for (const request of [
      { case: "fileContainingSymbol", value: "no.such.Thing" },
      { case: "fileByFilename", value: "no/such.proto" },
      {
        case: "fileContainingExtension",
        value: { containingType: "jobhooks.v1.JobEvent", extensionNumber: 1000 },
      },
      { case: "allExtensionNumbersOfType", value: "no.such.Message" },
    ] as const) {
      const answer = await reflect(request);
      expect(answer.case).toBe("errorResponse");
      expect(answer.case === "errorResponse" && answer.value.errorCode).toBe(Code.NotFound);
    }
  });

  it("echoes a few hundred bytes at most of what an anonymous caller sent", () => {
    const index = indexDescriptors([WebhookService], []);
    const long = "x".repeat(900);
    const answer = answerReflection(
      index,
      create(ServerReflectionRequestSchema, {
        host: long,
        messageRequest: { case: "fileContainingSymbol", value: long },
      }),
    );
    expect(toBinary(ServerReflectionResponseSchema, answer).length).toBeLessThan(500);
    expect(answer.messageResponse.case).toBe("errorResponse");
  });

  it("a message without extensions has no extension numbers", async () => {
    const answer = await reflect({ case: "allExtensionNumbersOfType", value: "jobhooks.v1.JobEvent" });
    expect(answer).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "jobhooks.v1.JobEvent", extensionNumber: [] },
    });
  });

  it("v1alpha answers like v1", async () => {
    const answer = await reflect({ case: "listServices", value: "" }, "v1alpha");
    expect(answer.case).toBe("listServicesResponse");
    const names = answer.case === "listServicesResponse" ? answer.value.service.map((s) => s.name) : [];
    expect(names).toContain("grpc.health.v1.Health");
    const files = await reflect({ case: "fileContainingSymbol", value: "grpc.health.v1.Health" }, "v1alpha");
    expect(fileNamesIn(files)).toEqual(["health/v1/health.proto"]);
  });
});
