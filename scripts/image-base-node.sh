#!/usr/bin/env bash
# Makes sure podman has the Dockerfile's base image, docker.io/library/node:24-slim: present
# already, pulled, or — where the registry cannot be reached (only npm's registry and Debian's
# mirrors can be, on the project's machines) — a local stand-in made from what can be reached:
#   - a Debian `debootstrap --variant=minbase` root of this machine's release, from the mirror
#     this machine's apt already uses (never a hard-coded host);
#   - the Node 24 binary of the npm registry's `node@24` package in /usr/local/bin, and npm 11
#     from the registry in /usr/local/lib/node_modules/npm (the official image's layout);
#   - a `node` user and group with uid/gid 1000 and home /home/node, as in the official image;
#   - this machine's CA bundle, with NODE_EXTRA_CA_CERTS pointing at it, because the npm registry
#     may be reached through TLS inspection (the official image does not need it).
# Idempotent; the base stays in podman's storage like a pulled image would. Needs root, podman
# and debootstrap. Prints the one line "base image: <how>" on stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/debian-mirror.sh
source "$root/scripts/lib/debian-mirror.sh"

image=docker.io/library/node:24-slim
podman=(podman --cgroup-manager=cgroupfs)

if "${podman[@]}" image exists "$image"; then
  echo "base image: $image already present"
  exit 0
fi
if timeout 180 "${podman[@]}" pull -q "$image" >/dev/null 2>&1; then
  echo "base image: $image pulled"
  exit 0
fi
echo "image-base-node: cannot pull $image; making a local stand-in from Debian and npm" >&2

mirror=$(debian_mirror)
[[ -n "$mirror" ]] || { echo "image-base-node: no Debian mirror found in /etc/apt" >&2; exit 1; }
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

work=$(mktemp -d "${TMPDIR:-/tmp}/jobhooks-node-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "image-base-node: debootstrap $suite from $mirror" >&2
timeout 900 debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  echo "image-base-node: debootstrap failed" >&2
  exit 1
}

# The binary of npm's `node` package (the same package .ci/run installs for the tests), and npm.
echo "image-base-node: node@24 and npm@11 from the npm registry" >&2
timeout 600 npm install --global --prefix "$work/node" --no-audit --no-fund node@24 >&2
node_bin=$(readlink -f "$work/node/bin/node")
version=$("$node_bin" --version)
[[ "$version" == v24.* ]] || { echo "image-base-node: node@24 gave $version" >&2; exit 1; }
install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
(cd "$work" && timeout 300 npm pack --silent npm@11 >"$work/npm-tgz")
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/$(tail -n 1 "$work/npm-tgz")" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/jobhooks-base/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

tar -C "$rootfs" -cf "$work/rootfs.tar" .
"${podman[@]}" import -q \
  --change "ENV NODE_VERSION=${version#v}" \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_EXTRA_CA_CERTS=/usr/local/share/jobhooks-base/ca-certificates.crt" \
  --change 'CMD ["node"]' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "base image: local stand-in for $image (Debian $suite minbase, Node $version)"
