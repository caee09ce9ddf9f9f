#!/usr/bin/env bash
# Makes sure podman has each image named on the command line — present already, pulled, or, where
# the registry cannot be reached (on the project's machines only npm's registry and Debian's
# mirrors can be), a local stand-in under the same name, built from what can be reached:
#
#   docker.io/library/node:24-slim   Debian minbase + the Node 24 binary of npm's `node@24` package
#                                    in /usr/local/bin + npm 11 + user `node` (uid/gid 1000), as the
#                                    official image lays them out
#   docker.io/library/nats:*         Debian minbase + /nats-server as scripts/fetch-nats-server.sh
#                                    fetches it (Debian testing's, ≥ 2.10); ENTRYPOINT as official
#   docker.io/prom/prometheus:*      Debian minbase + Debian's `prometheus` package (2.42 in
#                                    bookworm); ENTRYPOINT, CMD, user and /prometheus as official
#
# The Debian minbase root is `debootstrap --variant=minbase` of this machine's release from the
# mirror its apt already uses (never a hard-coded host), kept as localhost/jobhooks-stand-in/debian.
# Stand-ins carry this machine's CA bundle with NODE_EXTRA_CA_CERTS pointing at it, because npm's
# registry may be reached through TLS inspection (the official images do not need it).
# Idempotent; images stay in podman's storage as pulled ones would. Needs root, podman, debootstrap.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/debian-mirror.sh
source "$root/scripts/lib/debian-mirror.sh"
podman=(podman --cgroup-manager=cgroupfs)
say() { echo "stand-in-images: $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/jobhooks-stand-in-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
debian="localhost/jobhooks-stand-in/debian:$suite"

debian_minbase() {
  "${podman[@]}" image exists "$debian" && return 0
  local mirror rootfs="$work/rootfs"
  mirror=$(debian_mirror)
  [[ -n "$mirror" ]] || { say "no Debian mirror found in /etc/apt"; exit 1; }
  say "debootstrap --variant=minbase $suite from $mirror"
  timeout 900 debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    say "debootstrap failed"
    exit 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/jobhooks-stand-in/ca-certificates.crt"
  tar -C "$rootfs" -cf "$work/rootfs.tar" .
  rm -rf "$rootfs"
  "${podman[@]}" import -q \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_EXTRA_CA_CERTS=/usr/local/share/jobhooks-stand-in/ca-certificates.crt" \
    --change 'CMD ["bash"]' \
    "$work/rootfs.tar" "$debian" >/dev/null
  rm -f "$work/rootfs.tar"
}

# build NAME CONTEXT: builds CONTEXT/Containerfile as NAME.
build() {
  timeout 900 "${podman[@]}" build --isolation=chroot --network=host --format docker --layers=false \
    -t "$1" "$2" >"$work/build.log" 2>&1 || {
    tail -n 30 "$work/build.log" >&2
    say "building the stand-in $1 failed"
    exit 1
  }
}

node_image() {
  local name=$1 ctx="$work/node"
  mkdir -p "$ctx"
  say "node@24 and npm@11 from the npm registry"
  timeout 600 npm install --global --prefix "$ctx/prefix" --no-audit --no-fund node@24 >/dev/null 2>&1
  cp "$(readlink -f "$ctx/prefix/bin/node")" "$ctx/node"
  local version
  version=$("$ctx/node" --version)
  [[ "$version" == v24.* ]] || { say "node@24 gave $version"; exit 1; }
  (cd "$ctx" && timeout 300 npm pack --silent npm@11 >"$ctx/npm-tgz")
  mv "$ctx/$(tail -n 1 "$ctx/npm-tgz")" "$ctx/npm.tgz"
  rm -rf "$ctx/prefix"
  cat >"$ctx/Containerfile" <<EOF
FROM $debian
COPY node /usr/local/bin/node
ADD npm.tgz /usr/local/lib/node_modules/
RUN mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm \\
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_VERSION=${version#v}
CMD ["node"]
EOF
  build "$name" "$ctx"
}

nats_image() {
  local name=$1 ctx="$work/nats"
  bash "$root/scripts/fetch-nats-server.sh"
  mkdir -p "$ctx"
  cp "$root/.cache/nats-server/nats-server" "$ctx/nats-server"
  cat >"$ctx/Containerfile" <<EOF
FROM $debian
COPY nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--jetstream"]
EOF
  build "$name" "$ctx"
}

prometheus_image() {
  local name=$1 ctx="$work/prometheus"
  mkdir -p "$ctx"
  # The root's apt sources are the mirror debootstrap was given: this machine's.
  cat >"$ctx/Containerfile" <<EOF
FROM $debian
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \\
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
  build "$name" "$ctx"
}

for name in "$@"; do
  if "${podman[@]}" image exists "$name"; then
    echo "$name: present"
    continue
  fi
  if timeout 180 "${podman[@]}" pull -q "$name" >/dev/null 2>&1; then
    echo "$name: pulled"
    continue
  fi
  say "cannot pull $name; building a local stand-in"
  debian_minbase
  case "$name" in
    */node:24-slim) node_image "$name" ;;
    */nats:*) nats_image "$name" ;;
    */prometheus:*) prometheus_image "$name" ;;
    *) say "no stand-in recipe for $name"; exit 1 ;;
  esac
  echo "$name: local stand-in built from Debian $suite"
done
