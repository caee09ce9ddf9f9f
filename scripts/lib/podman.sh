# shellcheck shell=bash
# What the image test and the compose drill share: podman as it works on the project's machines,
# named steps, bounded waits, and loopback ports.
#
# cgroupfs and runc: crun fails on this kind of host's cgroups; runc with cgroupfs works.
PM=(podman --cgroup-manager=cgroupfs --runtime runc)
pm() { "${PM[@]}" "$@"; }
# Raised limits make runc fail here; these are the values that work and plenty for one service.
PM_ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

current_step="start"
step() {
  current_step="$*"
  printf '\n== %s: %s\n' "${SCRIPT_NAME:-script}" "$*"
}
fail() {
  echo "${SCRIPT_NAME:-script}: FAILED at step \"$current_step\": $*" >&2
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND…: runs COMMAND every half second until it succeeds, or fails
# the current step after SECONDS.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local until=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < until)) || fail "$what: not within ${seconds}s"
    sleep 0.5
  done
}

# free_port: a free TCP port on loopback (the kernel picks it; a race with another process is
# possible but harmless in practice: the start-up then fails and names the step).
free_port() {
  node -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# node_24: puts a Node 24 on PATH (the machine's may be older; CI installs one in .cache/node24).
node_24() {
  local root=$1
  if ! node --version 2>/dev/null | grep -qE '^v(2[4-9]|[3-9][0-9])\.'; then
    export PATH="$root/.cache/node24/bin:$PATH"
  fi
  node --version | grep -qE '^v(2[4-9]|[3-9][0-9])\.' || fail "Node 24 is needed on PATH (.ci/run installs it in .cache/node24)"
  export PATH="$root/node_modules/.bin:$PATH"
}
