#!/usr/bin/env bash
# Does protovalidate fit the publish path? (issue 23.1) Measures, side by side in one process,
# jobhooks' validateJobEvent and @bufbuild/protovalidate's validate() on the same realistic JobEvent,
# with JobEvent's rules written as protovalidate annotations. Runs in a scratch directory: nothing
# is added to the project. Needs the npm registry and, unless VALIDATE_PROTO names a local copy,
# GitHub for buf/validate/validate.proto (protovalidate v1.2.2).
#   bash bench/protovalidate-fit.sh        (RUNS=3 by default; ranges are per run, min–max of 5 rounds)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/jobhooks-pv-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund --save-exact @bufbuild/protovalidate@1.3.0 @bufbuild/protobuf@2.17.0 >/dev/null
mkdir -p proto/buf/validate proto/bench/v1
if [ -n "${VALIDATE_PROTO:-}" ]; then cp "$VALIDATE_PROTO" proto/buf/validate/validate.proto
else curl -fsSL https://raw.githubusercontent.com/bufbuild/protovalidate/v1.2.2/proto/protovalidate/buf/validate/validate.proto -o proto/buf/validate/validate.proto
fi
cat > proto/bench/v1/ev.proto <<'EOF'
syntax = "proto3";
package bench.v1;
import "buf/validate/validate.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";

enum JobStatus {
  JOB_STATUS_UNSPECIFIED = 0;
  JOB_STATUS_CREATED = 1;
  JOB_STATUS_PROCESSING = 2;
  JOB_STATUS_COMPLETED = 3;
  JOB_STATUS_FAILED = 4;
  JOB_STATUS_CANCELLED = 5;
}
message JobError {
  string code = 1 [(buf.validate.field).string = {min_len: 1, max_len: 128}];
  string message = 2 [(buf.validate.field).string.max_len = 4096];
}
message JobEvent {
  option (buf.validate.message).cel = {
    id: "error_only_when_failed"
    expression: "this.status == 4 ? (has(this.error) ? '' : 'error is required when status is failed') : (has(this.error) ? 'error is allowed only when status is failed' : '')"
  };
  option (buf.validate.message).cel = {
    id: "result_only_when_completed"
    expression: "has(this.result) && this.status != 3 ? 'result is allowed only when status is completed' : ''"
  };
  string event_id = 1 [(buf.validate.field).cel = {
    id: "event_id"
    expression: "this == '' || (this.matches('^[A-Za-z0-9_-]{1,128}$') && !this.startsWith('auto_') && !this.startsWith('msg_')) || this.matches('^[A-Za-z0-9_-]{1,128}[.][a-z]+([.][0-9]+)?$') ? '' : 'bad event id'"
  }];
  string tenant_id = 2 [(buf.validate.field).string = {pattern: "^[A-Za-z0-9_-]{1,128}$"}, (buf.validate.field).cel = {id: "no_app", expression: "this.startsWith('app_') ? 'must not start with app_' : ''"}];
  string job_id = 3 [(buf.validate.field).string = {pattern: "^[A-Za-z0-9_-]{1,128}$"}];
  JobStatus status = 4 [(buf.validate.field).enum = {defined_only: true, not_in: [0]}];
  google.protobuf.Timestamp occurred_at = 5;
  optional uint64 sequence = 6;
  google.protobuf.Struct result = 7;
  JobError error = 8;
  map<string, string> metadata = 9 [(buf.validate.field).map = {
    max_pairs: 64
    keys: {string: {min_len: 1, max_len: 128}}
    values: {string: {max_len: 1024}}
  }];
}
EOF
printf 'version: v2\nmodules:\n  - path: proto\n' > buf.yaml
printf 'version: v2\nclean: true\nplugins:\n  - local: %s\n    out: gen\n    opt: [target=ts, import_extension=js]\n' "$root/node_modules/.bin/protoc-gen-es" > buf.gen.yaml
"$root/node_modules/.bin/buf" generate
cat > bench.ts <<EOF
import { create } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { JobEventSchema as PvSchema, JobStatus as PvStatus } from "./gen/bench/v1/ev_pb.js";
import { JobEventSchema, JobStatus } from "$root/src/gen/jobhooks/v1/webhooks_pb.js";
import { validateJobEvent } from "$root/src/events/validate.js";

const fields = (i: number) => ({
  tenantId: "acme_corp",
  jobId: \`job_\${i}\`,
  sequence: 3n,
  occurredAt: timestampFromMs(1_764_000_000_000),
  result: { fields: { pages: { kind: { case: "numberValue" as const, value: 12 } }, url: { kind: { case: "stringValue" as const, value: "https://files.example.com/out/123.pdf" } } } },
  metadata: { region: "eu-west-1", priority: "high", requested_by: "user_42" },
});
const N = 2000;
const ours = Array.from({ length: N }, (_, i) => create(JobEventSchema, { ...fields(i), status: JobStatus.COMPLETED }));
const pv = Array.from({ length: N }, (_, i) => create(PvSchema, { ...fields(i), status: PvStatus.COMPLETED }));
const v = createValidator();
// sanity: both accept the valid event, both refuse a failed one without error
console.log("pv valid:", v.validate(PvSchema, pv[0]).kind, "ours:", validateJobEvent(ours[0]).kind);
const bad = create(PvSchema, { ...fields(1), status: PvStatus.FAILED, tenantId: "app_x" });
const r = v.validate(PvSchema, bad);
console.log("pv invalid:", r.kind, r.kind === "invalid" ? r.violations.map((x) => \`\${x.field.map?.((f)=>f.name) ?? ""}:\${x.message}\`) : r);

function time(label: string, fn: (i: number) => unknown, iters: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn(i % N);
  return Number(process.hrtime.bigint() - t0) / iters / 1000;
}
const ITERS = 50_000;
for (let w = 0; w < 2; w++) { time("", (i) => v.validate(PvSchema, pv[i]), 10_000); time("", (i) => validateJobEvent(ours[i]), 10_000); }
const rows: Record<string, number[]> = { ours: [], protovalidate: [], both: [] };
for (let run = 0; run < 5; run++) {
  rows.ours.push(time("ours", (i) => validateJobEvent(ours[i]), ITERS));
  rows.protovalidate.push(time("pv", (i) => v.validate(PvSchema, pv[i]), ITERS));
}
for (const [k, xs] of Object.entries(rows)) if (xs.length) console.log(k, "µs/event:", Math.min(...xs).toFixed(2), "–", Math.max(...xs).toFixed(2));
EOF
for _ in $(seq "${RUNS:-3}"); do node --import "$root/node_modules/tsx/dist/esm/index.mjs" bench.ts | tail -2; done
