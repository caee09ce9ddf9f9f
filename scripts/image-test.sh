#!/usr/bin/env bash
# Builds the Dockerfile, unchanged, with podman and checks the running container as an operator
# would: /healthz and /readyz, a publish relayed to the Svix stand-in, the server process not root,
# no dev or stand-in code in the image, `jobhooks dlq list` and `jobhooks keys` from the image, the
# HEALTHCHECK (kept by building in docker format), and SIGTERM → exit 0 within the stop deadline.
#
#   bash scripts/image-test.sh        (root, podman + runc + debootstrap, Node 24, npm ci done)
#
# The base image is pulled, or made locally by scripts/stand-in-images.sh where it cannot be.
# nats-server and the Svix stand-in run on the host's loopback (nats-server from
# scripts/fetch-nats-server.sh, the stand-in from this clone); the container shares the host's
# network. Every wait is bounded; the container, the image built here, the two processes and the
# temporary files are removed on every exit path. A failure names its step. Not part of `npm test`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
SCRIPT_NAME="image test"
# shellcheck source=lib/podman.sh
source "$root/scripts/lib/podman.sh"

image="localhost/jobhooks-image-test:$$"
container="jobhooks-image-test-$$"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobhooks-image-test.XXXXXX")
pids=()
started=$SECONDS

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ((status != 0)) && pm container exists "$container" 2>/dev/null; then
    echo "--- container log (last 30 lines)" >&2
    pm logs --tail 30 "$container" >&2 2>&1 || true
  fi
  pm rm -f -t 0 "$container" >/dev/null 2>&1 || true
  pm rm -f -t 0 "$container-cli" >/dev/null 2>&1 || true
  pm rmi -f "$image" >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
  if ((status == 0)); then
    echo "image test: passed in $((SECONDS - started))s"
  else
    echo "image test: FAILED at step \"$current_step\" (exit $status) after $((SECONDS - started))s" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "prerequisites"
command -v podman >/dev/null || fail "podman missing: apt-get install podman runc debootstrap"
command -v runc >/dev/null || fail "runc missing: apt-get install runc"
node_24 "$root"
[[ -d node_modules/tsx ]] || fail "run npm ci first (the Svix stand-in runs from this clone)"
bash scripts/fetch-nats-server.sh
nats_server="$root/.cache/nats-server/nats-server"

step "base image"
t0=$SECONDS
bash scripts/stand-in-images.sh docker.io/library/node:24-slim
base_seconds=$((SECONDS - t0))

step "build the Dockerfile (docker format, so HEALTHCHECK is kept)"
t0=$SECONDS
timeout 1200 podman --cgroup-manager=cgroupfs build --isolation=chroot --network=host --format docker --layers=false \
  -t "$image" . >"$tmp/build.log" 2>&1 || {
  tail -n 30 "$tmp/build.log" >&2
  fail "podman build"
}
build_seconds=$((SECONDS - t0))

step "image configuration: non-root user, HEALTHCHECK present"
user=$(pm image inspect --format '{{.Config.User}}' "$image")
[[ -n "$user" && "$user" != root && "$user" != 0 ]] || fail "the image runs as '${user:-root}'"
[[ "$(pm image inspect --format '{{.Config.Healthcheck}}' "$image")" == *healthz* ]] ||
  fail "no HEALTHCHECK in the image config (built without --format docker?)"

step "image contents: production code and dependencies only"
timeout 120 "${PM[@]}" run --rm --network=none --no-healthcheck "${PM_ULIMITS[@]}" --entrypoint node "$image" -e '
  const fs = require("node:fs");
  const problems = [];
  const top = fs.readdirSync("/app").sort().join(" ");
  if (top !== "dist node_modules package-lock.json package.json proto") problems.push("/app holds: " + top);
  for (const p of ["dist/local", "dist/cli/local.js", "dist/cli/dev.js", "dist/cli/svix-stand-in.js"])
    if (fs.existsSync("/app/" + p)) problems.push(p + " is in the image");
  // The lockfile marks what only devDependencies need ("dev": true); some devDependencies are
  // also production dependencies of others (@grpc/grpc-js of the OpenTelemetry SDK) and stay.
  const locked = require("/app/package-lock.json").packages;
  const dev = Object.keys(locked).filter((p) => locked[p].dev && p.startsWith("node_modules/"));
  const present = dev.filter((p) => fs.existsSync("/app/" + p));
  if (present.length) problems.push("dev-only packages in the image: " + present.slice(0, 20).join(", "));
  const files = fs.readdirSync("/app/dist", { recursive: true }).filter((f) => f.endsWith(".js"));
  const standIn = files.filter((f) => fs.readFileSync("/app/dist/" + f, "utf8").includes("startSvixStandIn"));
  if (standIn.length) problems.push("stand-in code in dist: " + standIn.join(", "));
  if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
  const mb = (dir) => (fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).reduce((n, e) => n + fs.statSync(e.parentPath + "/" + e.name).size, 0) / 1e6).toFixed(1);
  console.log("dist " + mb("/app/dist") + " MB, node_modules " + mb("/app/node_modules") + " MB, proto " + mb("/app/proto") + " MB");
  console.log(files.length + " compiled files; no stand-in code; none of the " + dev.length + " dev-only packages");
' || fail "the image holds what it should not"

step "start nats-server and the Svix stand-in on loopback"
nats_port=$(free_port)
"$nats_server" -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/jetstream" >"$tmp/nats.log" 2>&1 &
pids+=($!)
svix_port=$(free_port)
svix_token="testsk_imagetest$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
node --import tsx src/cli.ts svix-stand-in --port "$svix_port" --token "$svix_token" >"$tmp/stand-in.log" 2>&1 &
pids+=($!)
svix_url="http://127.0.0.1:$svix_port"
wait_for 20 "nats-server on port $nats_port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$nats_port"
wait_for 60 "the Svix stand-in at $svix_url" curl -fsS -H "Authorization: Bearer $svix_token" "$svix_url/_stand-in/health"

step "run the image"
port=$(free_port)
service_token="st_imagetest$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
echo "$service_token" >"$tmp/service-tokens"
# The image's user (uid 1000) reads the secret; nobody else on the host needs to.
chown 1000:1000 "$tmp/service-tokens"
chmod 0400 "$tmp/service-tokens"
pm run -d --name "$container" --network=host "${PM_ULIMITS[@]}" \
  -e JOBHOOKS_ADDR="127.0.0.1:$port" -e NATS_URL="nats://127.0.0.1:$nats_port" \
  -e SVIX_TOKEN="$svix_token" -e SVIX_SERVER_URL="$svix_url" \
  -e JOBHOOKS_SERVICE_TOKENS_FILE=/run/secrets/service-tokens \
  -v "$tmp/service-tokens:/run/secrets/service-tokens:ro" \
  "$image" >/dev/null 2>"$tmp/run.err" || { cat "$tmp/run.err" >&2; fail "podman run"; }
# Without systemd podman cannot schedule the HEALTHCHECK (it says so in run.err); the check below
# runs it by hand, as an orchestrator's probe would.
url="http://127.0.0.1:$port"

step "/healthz and /readyz answer 200"
wait_for 60 "GET $url/healthz" curl -fsS "$url/healthz"
wait_for 60 "GET $url/readyz" curl -fsS "$url/readyz"

step "the server process runs as a non-root user"
pid=$(pm inspect --format '{{.State.Pid}}' "$container")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[[ "$uid" != 0 ]] || fail "the server runs as root"
echo "server process uid $uid"

step "a publish is relayed to the Svix stand-in"
event='{"event":{"tenantId":"imagetest","jobId":"job_image","status":"JOB_STATUS_COMPLETED","sequence":"1","result":{"pages":1}}}'
reply=$(curl -fsS --max-time 20 "$url/jobhooks.v1.WebhookService/PublishJobEvent" \
  -H "Authorization: Bearer $service_token" -H 'content-type: application/json' -d "$event") ||
  fail "PublishJobEvent refused"
[[ "$reply" == *'"eventId":"job_image.completed.1"'* ]] || fail "PublishJobEvent answered $reply"
wait_for 30 "the message at the stand-in (app imagetest, eventId job_image.completed.1)" \
  curl -fsS -H "Authorization: Bearer $svix_token" "$svix_url/api/v1/app/imagetest/msg/job_image.completed.1"

step "HEALTHCHECK passes"
timeout 30 "${PM[@]}" healthcheck run "$container" || fail "podman healthcheck run"
echo "healthy"

# The other commands run the same image as the service, as docs/operations.md shows.
cli() { timeout 60 "${PM[@]}" run --rm --name "$container-cli" --network=host --no-healthcheck "${PM_ULIMITS[@]}" \
  -e NATS_URL="nats://127.0.0.1:$nats_port" "$image" "$@"; }

step "jobhooks keys create / list / revoke from the image"
created=$(cli keys create --tenant imagetest 2>&1) || fail "keys create"
key_id=$(grep -oE 'key_[A-Za-z0-9]+' <<<"$created" | head -n 1)
[[ -n "$key_id" ]] || fail "keys create printed no key id: $created"
cli keys list --tenant imagetest | grep -q "$key_id" || fail "keys list does not show $key_id"
cli keys revoke "$key_id" >/dev/null || fail "keys revoke $key_id"

step "jobhooks dlq list from the image"
cli dlq list || fail "dlq list"

step "jobhooks svix-stand-in explains it is not in the image"
set +e
out=$(cli svix-stand-in --port 1 2>&1)
status=$?
set -e
[[ $status == 2 && "$out" == *"not part of the production build"* ]] ||
  fail "svix-stand-in --port 1 exited $status: $out"

step "SIGTERM: exit 0 within the stop deadline"
deadline_s=20 # JOBHOOKS_STOP_DEADLINE_MS' default
t0=$SECONDS
# podman stop sends SIGTERM, and SIGKILL only after 60 s (exit 137 then).
pm stop -t 60 "$container" >/dev/null || fail "podman stop"
stop_seconds=$((SECONDS - t0))
code=$(pm inspect --format '{{.State.ExitCode}}' "$container")
[[ "$code" == 0 ]] || fail "exit code $code after SIGTERM"
((stop_seconds <= deadline_s)) || fail "stopping took ${stop_seconds}s, over the ${deadline_s}s stop deadline"
echo "exit 0 after ${stop_seconds}s"

step "size"
size=$(pm image inspect --format '{{.Size}}' "$image")
base_size=$(pm image inspect --format '{{.Size}}' docker.io/library/node:24-slim)
echo "image $((size / 1000000)) MB, of which $(((size - base_size) / 1000000)) MB above the base image"
echo "timings: base image ${base_seconds}s, build ${build_seconds}s, total $((SECONDS - started))s"
