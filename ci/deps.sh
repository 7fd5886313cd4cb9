#!/usr/bin/env bash
# Installs the Debian packages listed in ci/packages.txt, or in the list
# files given as arguments (ci/ports.sh: ci/ports-packages.txt); idempotent:
# a package already installed costs nothing.  Needs root, like apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here/packages.txt"
mapfile -t pkgs < <(cat "$@" | sed 's/#.*//; s/^\s*//; s/\s*$//' | sed '/^$/d')
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#pkgs[@]} packages installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages (${missing[*]}) and not root: install them with apt-get" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
