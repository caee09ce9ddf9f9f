import {
  create,
  type DescEnum,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
  ServerReflection as ServerReflectionV1,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema as ServerReflectionRequestSchemaV1alpha,
  ServerReflectionResponseSchema as ServerReflectionResponseSchemaV1alpha,
  ServerReflection as ServerReflectionV1alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { clip } from "./rpc-errors.js";

export interface ReflectionOptions {
  /**
   * The services `list_services` names. Default: every service registered on the router, read when
   * the first reflection request arrives — so services registered after this call count too, and
   * the reflection services themselves are listed (as grpc-go does).
   */
  services?: DescService[];
  /**
   * Further files to describe, e.g. ones that only declare extensions. The files of the services
   * and every transitive import (google/protobuf/* included) are always described.
   */
  files?: DescFile[];
}

/**
 * Serves gRPC server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha`, so tools
 * (`buf curl`, grpcurl, Postman) can call the server without local copies of its .proto files.
 *
 * Descriptors come from the generated code (protobuf-es v2 embeds each file's
 * FileDescriptorProto), so what reflection reports is exactly what the server was built with.
 */
export function registerReflection(
  router: ConnectRouter,
  options: ReflectionOptions = {},
  handlerOptions?: Parameters<ConnectRouter["service"]>[2],
): void {
  let index: ReflectionIndex | undefined;
  const answer = (request: ServerReflectionRequest): ServerReflectionResponse => {
    index ??= indexDescriptors(options.services ?? servicesOn(router), options.files ?? []);
    return answerReflection(index, request);
  };

  router.service(
    ServerReflectionV1,
    {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) yield answer(request);
      },
    },
    handlerOptions,
  );
  // v1alpha's messages are wire-identical to v1's (only the package differs), so v1alpha requests
  // are re-read as v1 messages and answered by the same code.
  router.service(
    ServerReflectionV1alpha,
    {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) {
          const asV1 = fromBinary(
            ServerReflectionRequestSchema,
            toBinary(ServerReflectionRequestSchemaV1alpha, request),
          );
          const response = answer(asV1);
          yield fromBinary(
            ServerReflectionResponseSchemaV1alpha,
            toBinary(ServerReflectionResponseSchema, response),
          );
        }
      },
    },
    handlerOptions,
  );
}

/** What reflection can answer, looked up by the names clients ask with. */
export interface ReflectionIndex {
  /** Fully-qualified service names, sorted. */
  serviceNames: string[];
  /** By file name with its .proto suffix, e.g. "health/v1/health.proto". */
  filesByName: Map<string, DescFile>;
  /** By fully-qualified name: services, methods, messages, fields, oneofs, enums, enum values, extensions. */
  filesBySymbol: Map<string, DescFile>;
  /** Fully-qualified message names, for all_extension_numbers_of_type. */
  messageNames: Set<string>;
  /** Extendee type name → extension number → declaring file. */
  extensionsByExtendee: Map<string, Map<number, DescFile>>;
}

export function indexDescriptors(services: DescService[], extraFiles: DescFile[]): ReflectionIndex {
  const index: ReflectionIndex = {
    serviceNames: [...new Set(services.map((service) => service.typeName))].sort(),
    filesByName: new Map(),
    filesBySymbol: new Map(),
    messageNames: new Set(),
    extensionsByExtendee: new Map(),
  };
  const visit = (file: DescFile): void => {
    if (index.filesByName.has(file.proto.name)) return;
    index.filesByName.set(file.proto.name, file);
    indexFile(index, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const service of services) visit(service.file);
  for (const file of extraFiles) visit(file);
  return index;
}

function indexFile(index: ReflectionIndex, file: DescFile): void {
  const symbol = (name: string) => index.filesBySymbol.set(name, file);
  const packageScope = file.proto.package;
  const indexEnum = (descEnum: DescEnum, scope: string) => {
    symbol(descEnum.typeName);
    // Enum values are scoped like siblings of their enum (C++ scoping rules).
    for (const value of descEnum.values) symbol(scope ? `${scope}.${value.name}` : value.name);
  };
  const indexExtension = (extension: DescExtension) => {
    symbol(extension.typeName);
    let byNumber = index.extensionsByExtendee.get(extension.extendee.typeName);
    if (!byNumber) {
      byNumber = new Map();
      index.extensionsByExtendee.set(extension.extendee.typeName, byNumber);
    }
    byNumber.set(extension.number, file);
  };
  const indexMessage = (message: DescMessage) => {
    symbol(message.typeName);
    index.messageNames.add(message.typeName);
    for (const field of message.fields) symbol(`${message.typeName}.${field.name}`);
    for (const oneof of message.oneofs) symbol(`${message.typeName}.${oneof.name}`);
    for (const nested of message.nestedMessages) indexMessage(nested);
    // protobuf-es has no DescMessage for a map's synthetic entry type, but protoc and grpc-go
    // resolve it, so it is looked up in the descriptor itself.
    for (const nested of message.proto.nestedType) {
      if (nested.options?.mapEntry) {
        symbol(`${message.typeName}.${nested.name}`);
        index.messageNames.add(`${message.typeName}.${nested.name}`);
      }
    }
    for (const nested of message.nestedEnums) indexEnum(nested, message.typeName);
    for (const nested of message.nestedExtensions) indexExtension(nested);
  };

  for (const service of file.services) {
    symbol(service.typeName);
    for (const method of service.methods) symbol(`${service.typeName}.${method.name}`);
  }
  for (const message of file.messages) indexMessage(message);
  for (const descEnum of file.enums) indexEnum(descEnum, packageScope);
  for (const extension of file.extensions) indexExtension(extension);
}

/** Anyone may ask: what is echoed of a request stays a few hundred bytes, whatever it held. */
const MAX_ECHO_CHARS = 100;

/** The request as the protocol echoes it, with any string longer than a real one cut. */
function echoOf(request: ServerReflectionRequest): ServerReflectionRequest {
  const r = request.messageRequest;
  const long =
    request.host.length > MAX_ECHO_CHARS || (typeof r.value === "string" && r.value.length > MAX_ECHO_CHARS);
  if (!long) return request;
  const copy = create(ServerReflectionRequestSchema, { host: clip(request.host, MAX_ECHO_CHARS) });
  if (typeof r.value === "string" && r.case !== undefined) {
    copy.messageRequest = {
      case: r.case,
      value: clip(r.value, MAX_ECHO_CHARS),
    } as ServerReflectionRequest["messageRequest"];
  }
  return copy;
}

export function answerReflection(
  index: ReflectionIndex,
  request: ServerReflectionRequest,
): ServerReflectionResponse {
  const respond = (
    messageResponse: MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"],
  ) =>
    create(ServerReflectionResponseSchema, {
      validHost: clip(request.host, MAX_ECHO_CHARS),
      originalRequest: echoOf(request),
      messageResponse,
    });
  const notFound = (what: string) =>
    respond({
      case: "errorResponse",
      value: { errorCode: Code.NotFound, errorMessage: `${clip(what, MAX_ECHO_CHARS)} not found` },
    });
  const withDependencies = (file: DescFile | undefined, what: string) =>
    file
      ? respond({
          case: "fileDescriptorResponse",
          value: { fileDescriptorProto: serializeWithDependencies(file) },
        })
      : notFound(what);

  const query = request.messageRequest;
  switch (query.case) {
    case "listServices":
      return respond({
        case: "listServicesResponse",
        value: { service: index.serviceNames.map((name) => ({ name })) },
      });
    case "fileByFilename":
      return withDependencies(index.filesByName.get(query.value), `file ${query.value}`);
    case "fileContainingSymbol":
      return withDependencies(index.filesBySymbol.get(stripLeadingDot(query.value)), `symbol ${query.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = query.value;
      const file = index.extensionsByExtendee.get(stripLeadingDot(containingType))?.get(extensionNumber);
      return withDependencies(file, `extension ${extensionNumber} of ${containingType}`);
    }
    case "allExtensionNumbersOfType": {
      const typeName = stripLeadingDot(query.value);
      if (!index.messageNames.has(typeName)) return notFound(`message type ${typeName}`);
      return respond({
        case: "allExtensionNumbersResponse",
        value: {
          baseTypeName: typeName,
          extensionNumber: [...(index.extensionsByExtendee.get(typeName)?.keys() ?? [])].sort(
            (a, b) => a - b,
          ),
        },
      });
    }
    default:
      return respond({
        case: "errorResponse",
        value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" },
      });
  }
}

const serialized = new WeakMap<DescFile, Uint8Array>();

/**
 * The file first, then everything it imports, transitively. The spec lets a server skip files it
 * sent earlier on the same stream; sending all keeps the server stateless, and the files are small.
 */
function serializeWithDependencies(file: DescFile): Uint8Array[] {
  const ordered: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (current: DescFile): void => {
    if (seen.has(current.proto.name)) return;
    seen.add(current.proto.name);
    ordered.push(current);
    for (const dependency of current.dependencies) visit(dependency);
  };
  visit(file);
  return ordered.map((current) => {
    let bytes = serialized.get(current);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, current.proto);
      serialized.set(current, bytes);
    }
    return bytes;
  });
}

function servicesOn(router: ConnectRouter): DescService[] {
  return router.handlers.map((handler) => handler.service);
}

function stripLeadingDot(name: string): string {
  return name.startsWith(".") ? name.slice(1) : name;
}
