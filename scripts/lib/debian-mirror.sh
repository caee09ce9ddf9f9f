# shellcheck shell=bash
# debian_mirror: prints the Debian mirror this machine's apt already uses (deb822 or one-line
# format), never a hard-coded host; the same reading as scripts/fetch-nats-server.sh.
debian_mirror() {
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' || true
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}' || true
  } | grep -v -E 'security|nodesource|google|updates' | grep -E '/debian/?$' | head -n 1 || true
}
