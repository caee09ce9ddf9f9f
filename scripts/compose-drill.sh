#!/usr/bin/env bash
# The production topology's failure drill: starts deploy/compose.yaml (3 NATS nodes, JetStream R3,
# two jobhooks replicas, Prometheus with deploy/prometheus/jobhooks-rules.yml) plus
# deploy/compose.drill.yaml (the Svix stand-in in place of Svix) with podman-compose, then
# scripts/compose-drill.ts publishes a steady stream, kills one NATS node and one replica, restarts
# them and checks 0 lost, 0 duplicated, per-job order, and JobhooksReplicaDown fired and resolved.
#
#   bash scripts/compose-drill.sh     (root; podman, runc, podman-compose, debootstrap; npm ci done)
#
# Images named in the compose files are pulled, or built as stand-ins from Debian's packages by
# scripts/stand-in-images.sh where they cannot be; jobhooks' image is built from the Dockerfile.
# About 6 minutes (the alert needs its replica down for 2 minutes). Every wait is bounded; the
# containers, network, volumes and the jobhooks image it built are removed on every exit path.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
SCRIPT_NAME="compose drill"
# shellcheck source=lib/podman.sh
source "$root/scripts/lib/podman.sh"

project="jobhooksdrill$$"
# DRILL_IMAGE: an image of jobhooks built already (kept afterwards); by default the drill builds one.
image="${DRILL_IMAGE:-localhost/jobhooks-drill:$$}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobhooks-compose-drill.XXXXXX")
started=$SECONDS
compose=(podman-compose -p "$project" -f deploy/compose.yaml -f deploy/compose.drill.yaml)

# podman-compose runs plain `podman`: the settings that work on these hosts (see lib/podman.sh)
# go in a containers.conf of the drill's own, nothing system-wide.
cat >"$tmp/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
export CONTAINERS_CONF="$tmp/containers.conf"

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ((status != 0)); then
    for c in $(pm ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' 2>/dev/null); do
      echo "--- $c (last 15 lines)" >&2
      pm logs --tail 15 "$c" 2>&1 | cut -c1-400 >&2 || true
    done
  fi
  timeout 180 "${compose[@]}" down -v -t 5 >/dev/null 2>&1 || true
  # Whatever `down` left: by the compose project's label, and the project's network and volumes.
  for c in $(pm ps -aq --filter "label=io.podman.compose.project=$project" 2>/dev/null); do
    pm rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  for v in $(pm volume ls -q 2>/dev/null | grep "^${project}_" || true); do pm volume rm -f "$v" >/dev/null 2>&1 || true; done
  pm network rm -f "${project}_default" >/dev/null 2>&1 || true
  [[ -n "${DRILL_IMAGE:-}" ]] || pm rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$tmp"
  if ((status == 0)); then
    echo "compose drill: passed in $((SECONDS - started))s"
  else
    echo "compose drill: FAILED at step \"$current_step\" (exit $status) after $((SECONDS - started))s" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "prerequisites"
for tool in podman runc podman-compose; do
  command -v "$tool" >/dev/null || fail "$tool missing: apt-get install podman runc podman-compose debootstrap"
done
# Service names resolve on a compose network through the CNI dnsname plugin (podman 4 with CNI).
[[ -x /usr/lib/cni/dnsname ]] || [[ "$(pm info --format '{{.Host.NetworkBackend}}')" == netavark ]] ||
  fail "no DNS on compose networks: apt-get install golang-github-containernetworking-plugin-dnsname"
node_24 "$root"
[[ -d node_modules/tsx ]] || fail "run npm ci first (the drill and the Svix stand-in run from this clone)"

step "images named in the compose files"
mapfile -t images < <(grep -hoE '^\s+image: docker\.io/[^ ]+' deploy/compose.yaml deploy/compose.drill.yaml | awk '{print $2}' | sort -u)
bash scripts/stand-in-images.sh "${images[@]}"

step "build jobhooks' image"
if [[ -n "${DRILL_IMAGE:-}" ]]; then
  pm image exists "$image" || fail "DRILL_IMAGE=$image does not exist"
else
  t0=$SECONDS
  timeout 1200 podman build --isolation=chroot --network=host --format docker --layers=false -t "$image" . \
    >"$tmp/build.log" 2>&1 || { tail -n 30 "$tmp/build.log" >&2; fail "podman build"; }
  echo "built in $((SECONDS - t0))s"
fi

step "podman-compose up"
export JOBHOOKS_IMAGE="$image"
export SVIX_TOKEN="testsk_drill$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export SERVICE_TOKEN="st_drill$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
echo "$SERVICE_TOKEN" >"$tmp/service-tokens"
chown 1000:1000 "$tmp/service-tokens" # the image's user reads it; nobody else needs to
chmod 0400 "$tmp/service-tokens"
export JOBHOOKS_SERVICE_TOKENS="$tmp/service-tokens"
JOBHOOKS_1_PORT=$(free_port)
JOBHOOKS_2_PORT=$(free_port)
PROMETHEUS_PORT=$(free_port)
SVIX_PORT=$(free_port)
export JOBHOOKS_1_PORT JOBHOOKS_2_PORT PROMETHEUS_PORT SVIX_PORT
timeout 300 "${compose[@]}" up -d >"$tmp/up.log" 2>&1 || { tail -n 30 "$tmp/up.log" >&2; fail "podman-compose up"; }

step "both replicas ready (NATS cluster formed, streams R3 created)"
# Ready, or fail at once when a replica has exited (bad configuration, say) rather than after 180 s.
ready() {
  local name="${project}_jobhooks-$1_1" port=$2
  [[ "$(pm inspect --format '{{.State.Status}}' "$name" 2>/dev/null)" != exited ]] || fail "$name exited"
  curl -fsS "http://127.0.0.1:$port/readyz"
}
wait_for 180 "jobhooks-1 ready" ready 1 "$JOBHOOKS_1_PORT"
wait_for 180 "jobhooks-2 ready" ready 2 "$JOBHOOKS_2_PORT"

step "the drill (scripts/compose-drill.ts)"
DRILL_PROJECT="$project" \
  JOBHOOKS_URLS="http://127.0.0.1:$JOBHOOKS_1_PORT,http://127.0.0.1:$JOBHOOKS_2_PORT" \
  SVIX_URL="http://127.0.0.1:$SVIX_PORT" PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" \
  timeout 1200 node --import tsx scripts/compose-drill.ts || fail "see the line above"
