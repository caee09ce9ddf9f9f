#!/usr/bin/env bash
# Fetches a current nats-server (>= 2.10) into .cache/nats-server/ without changing the system.
#
# Debian 12 ships nats-server 2.9, which is out of support and lacks features jobhooks relies on
# (term reasons, unlimited redelivery with backoff). Debian testing carries a current build. We
# read testing's package index through a private apt configuration (our own sources list, lists and
# cache dirs under .cache/), using the mirror this machine's apt already uses, download the .deb and
# unpack only the binary. The binary is static Go and needs nothing else.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root/.cache/nats-server"
bin="$cache/nats-server"
suite="${NATS_DEBIAN_SUITE:-forky}"

if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
  echo "nats-server already present: $("$bin" --version) ($bin)" >&2
  exit 0
fi

# The mirror this machine's apt uses (deb822 or one-line format), never a hard-coded host.
mirror=$(
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' || true
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}' || true
  } | grep -v -E 'security|nodesource|google|updates' | head -n 1 || true
)
if [[ -z "$mirror" ]]; then
  echo "fetch-nats-server: no Debian mirror found in /etc/apt; install nats-server >= 2.10 yourself and set NATS_SERVER_BIN" >&2
  exit 1
fi

apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc/preferences.d" "$apt_dir/etc/apt.conf.d"
: >"$apt_dir/status"
# Testing is signed with the newest archive key; bookworm's keyring package already carries it.
keyrings=$(ls /usr/share/keyrings/debian-archive-*.gpg 2>/dev/null | tr '\n' ' ')
{
  echo "Types: deb"
  echo "URIs: $mirror"
  echo "Suites: $suite"
  echo "Components: main"
  echo "Signed-By: ${keyrings% }"
} >"$apt_dir/etc/sources.sources"
opts=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$apt_dir/etc"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::State::Status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "APT::Get::List-Cleanup=false"
  -o "Debug::NoLocking=true"
)
# As root, apt hands downloads to the _apt user, and warns ("Download is performed unsandboxed as
# root") when that user cannot reach the target (a clone under /root). The files are ours and go
# nowhere system-wide, so root downloads them itself, without the warning.
if [[ $EUID -eq 0 ]]; then opts+=(-o "APT::Sandbox::User=root"); fi
# sources.sources is only picked up from a SourceParts dir with the .sources suffix.
mv "$apt_dir/etc/sources.sources" "$apt_dir/etc/testing.sources"

echo "fetch-nats-server: reading $suite's package index from $mirror" >&2
apt-get "${opts[@]}" -qq update >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt drops privileges to _apt for downloads; the temp dir must be writable by it.
chmod 0777 "$work"
(cd "$work" && apt-get "${opts[@]}" -qq download nats-server >&2)
deb=$(ls "$work"/nats-server_*.deb)
dpkg-deb -x "$deb" "$work/x"
found=$(find "$work/x" -type f -name nats-server -perm -u+x | head -n 1)
[[ -n "$found" ]] || { echo "fetch-nats-server: no nats-server binary inside $(basename "$deb")" >&2; exit 1; }
install -m 0755 "$found" "$bin"
rm -rf "$apt_dir"
echo "nats-server ready: $("$bin" --version) ($bin)" >&2
