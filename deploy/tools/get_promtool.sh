#!/usr/bin/env bash
# Print the path of a working `promtool`, installing it into a cache directory if needed.
#
#   deploy/tools/get_promtool.sh [CACHE_DIR]     (default: <repo>/.churnwatch/tools/bin)
#
# Why this way: promtool (Prometheus's rule checker and rule unit-test runner) ships on no
# Python package index. Debian's `prometheus` package has it; rather than installing the whole
# package (which would also set up a Prometheus service), we download the .deb with
# `apt-get download` (no root needed once the package lists exist) and extract only
# usr/bin/promtool (a static Go binary, ~48 MB) into the cache. Order of preference:
#   1. PROMTOOL if set, 2. `promtool` on PATH, 3. the cache, 4. download from Debian.
# Exit status 0 and the path on stdout on success; non-zero and one line on stderr otherwise.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${1:-$repo_root/.churnwatch/tools/bin}"

works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

if [ -n "${PROMTOOL:-}" ] && works "$PROMTOOL"; then echo "$PROMTOOL"; exit 0; fi
if found="$(command -v promtool 2>/dev/null)" && works "$found"; then echo "$found"; exit 0; fi
if works "$cache_dir/promtool"; then echo "$cache_dir/promtool"; exit 0; fi

for tool in apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "get_promtool: no promtool on PATH and no $tool to fetch Debian's (install Prometheus's promtool, or set PROMTOOL)" >&2
    exit 3
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0777 "$work"  # apt's sandbox user (_apt) writes the download here
cd "$work"
if ! apt-get download prometheus >"$work/apt.log" 2>&1; then
  # A fresh machine may have no package lists yet; refresh them if we are allowed to.
  if [ "$(id -u)" = "0" ] && apt-get update -qq >>"$work/apt.log" 2>&1 \
     && apt-get download prometheus >>"$work/apt.log" 2>&1; then
    :
  else
    echo "get_promtool: 'apt-get download prometheus' failed: $(grep -E '^(E|W):' "$work/apt.log" | tail -1)" >&2
    exit 4
  fi
fi
deb="$(ls "$work"/prometheus_*.deb)"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/bin/promtool
mkdir -p "$cache_dir"
install -m 0755 "$work/usr/bin/promtool" "$cache_dir/promtool.tmp"
mv -f "$cache_dir/promtool.tmp" "$cache_dir/promtool"  # atomic: parallel callers never see half a file
if ! works "$cache_dir/promtool"; then
  echo "get_promtool: the extracted promtool does not run on this machine" >&2
  exit 5
fi
echo "$cache_dir/promtool"
