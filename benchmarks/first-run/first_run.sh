#!/usr/bin/env bash
# What a new user meets: `git clone` into an empty folder, then `make run` as the very first command.
# Each round clones this repository afresh (no .venv, .tools, .cache or .run), starts `make run`, times it
# until the "ACR is up" banner, then stops it with SIGINT to make and checks that no port stays bound.
#
#   benchmarks/first-run/first_run.sh [ROUNDS] [--cold]
#
# --cold also empties the package caches (uv's and pip's) for every round, as on a new machine: every
# wheel then comes from the package registry. Prints one Markdown row per round.
set -euo pipefail
set -m # jobs in their own process group, with SIGINT not ignored: `kill -INT` reaches make as Ctrl-C would
repo="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-3}"
cold="${2:-}"
ports=(4566 8000 8001 8002 8003 8004 8005 8006 8007)

echo "| round | package cache | install s | city + start s | make run → healthy s | disk (.venv + .tools + .cache) | ports left bound |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  work="$(mktemp -d)"
  git clone -q "$repo" "$work/acr"
  env_cache=() label=warm
  if [ "$cold" = "--cold" ]; then
    env_cache=(UV_CACHE_DIR="$work/uv-cache" PIP_NO_CACHE_DIR=1) label=cold
  fi
  log="$work/run.log"
  started=$(date +%s.%N)
  (cd "$work/acr" && exec env "${env_cache[@]}" make run >"$log" 2>&1) &
  make_pid=$!
  installed="" up=""
  for _ in $(seq 1 6000); do
    now=$(date +%s.%N)
    if [ -z "$installed" ] && grep -q "==> starting the moto emulator" "$log"; then installed=$now; fi
    if grep -q "ACR is up in" "$log"; then up=$now; break; fi
    if ! kill -0 "$make_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  kill -INT "$make_pid" 2>/dev/null || true
  wait "$make_pid" 2>/dev/null || true
  bound=0
  for port in "${ports[@]}"; do
    if ss -ltn "sport = :$port" | grep -q LISTEN; then bound=$((bound + 1)); fi
  done
  disk=$( (du -sh "$work/acr/.venv" "$work/acr/.tools" "$work/acr/.cache" 2>/dev/null || true) | awk '{print $1}' | paste -sd+ -)
  if [ -z "$up" ]; then
    echo "| $round | $label | — | — | FAILED (see $log) | $disk | $bound |"
    continue
  fi
  printf "| %s | %s | %.1f | %.1f | %.1f | %s | %s |\n" "$round" "$label" \
    "$(echo "$installed - $started" | bc)" "$(echo "$up - $installed" | bc)" "$(echo "$up - $started" | bc)" "$disk" "$bound"
  rm -rf "$work"
done
