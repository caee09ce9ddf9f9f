// Regenerates test/fixtures/svix-openapi/openapi.json from Svix's published OpenAPI description:
//   node scripts/trim-svix-openapi.mjs <path to svix-webhooks' codegen/lib-openapi.json>
// Keeps the operation groups the Svix stand-in serves (and may grow into), the `webhooks` section
// (operational webhook payloads) and every component schema they reach; drops the rest so the
// fixture stays small. Operations and schemas that are kept are copied unchanged. Afterwards run
// `npx biome format --write test/fixtures/svix-openapi/openapi.json` and update SOURCE.md beside it.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const KEPT_GROUPS = [
  "v1.application",
  "v1.authentication",
  "v1.endpoint",
  "v1.event-type",
  "v1.health",
  "v1.message",
  "v1.message-attempt",
  "v1.operational-webhook",
];

const source = process.argv[2];
if (!source) throw new Error("usage: node scripts/trim-svix-openapi.mjs <lib-openapi.json>");
const spec = JSON.parse(readFileSync(source, "utf8"));
const target = fileURLToPath(new URL("../test/fixtures/svix-openapi/openapi.json", import.meta.url));

const kept = (operationId) => KEPT_GROUPS.some((g) => operationId?.split(".").slice(0, 2).join(".") === g);
const paths = {};
for (const [path, item] of Object.entries(spec.paths)) {
  const ops = Object.fromEntries(Object.entries(item).filter(([, op]) => kept(op?.operationId)));
  if (Object.keys(ops).length > 0) paths[path] = ops;
}

// Every schema reachable from what is kept, following $ref transitively.
const schemas = {};
const visit = (node) => {
  if (Array.isArray(node)) return node.forEach(visit);
  if (typeof node !== "object" || node === null) return;
  for (const [key, value] of Object.entries(node)) {
    const ref = key === "$ref" && typeof value === "string" && value.match(/^#\/components\/schemas\/(.+)$/);
    if (ref && !(ref[1] in schemas)) {
      schemas[ref[1]] = spec.components.schemas[ref[1]];
      visit(schemas[ref[1]]);
    } else visit(value);
  }
};
visit(paths);
visit(spec.webhooks ?? {});

const trimmed = {
  openapi: spec.openapi,
  info: spec.info,
  servers: spec.servers,
  paths,
  webhooks: spec.webhooks,
  components: {
    securitySchemes: spec.components.securitySchemes,
    schemas: Object.fromEntries(
      Object.keys(schemas)
        .sort()
        .map((k) => [k, schemas[k]]),
    ),
  },
};
writeFileSync(target, `${JSON.stringify(trimmed, null, 2)}\n`);
console.log(`${Object.keys(paths).length} paths, ${Object.keys(schemas).length} schemas → ${target}`);
