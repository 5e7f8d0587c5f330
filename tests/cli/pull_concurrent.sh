#!/usr/bin/env bash
# Four processes load the same URL at once (two with thread workers, two with process
# workers): the server sees one download, and all four generate the same text as the local file.
set -uo pipefail
wandler=$1
tmp=$(mktemp -d)
source "${WANDLER_SOURCE_DIR:?}/tests/source/lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export WANDLER_CACHE_DIR="$tmp/cache"
start_server "$tmp/server"
"$wandler" run "$src/models/stories260K.gguf" -p "Once upon a time" -n 32 --temp 0 --no-echo > "$tmp/expect" 2>/dev/null \
  || fail "local run"

control '{"rate": 1000000}' # about 1.2 s, so that the four overlap
pids=()
for i in 1 2 3 4; do
  mode=thread; [ $i -gt 2 ] && mode=process
  "$wandler" run "$base/redirect/stories260K.gguf" --worker $mode -p "Once upon a time" -n 32 --temp 0 --no-echo \
    > "$tmp/out$i" 2> "$tmp/err$i" &
  pids+=($!)
done
for i in 1 2 3 4; do
  wait "${pids[$((i - 1))]}" || { cat "$tmp/err$i"; fail "process $i failed"; }
  cmp -s "$tmp/out$i" "$tmp/expect" || fail "process $i generated other text"
done
n=$(body_transfers)
[ "$n" -eq 1 ] || { cat "$log"; fail "$n downloads for four concurrent loads"; }
echo "  4 processes, $(wc -l < "$log") requests, $n download; all generated the same text"
echo "pull_concurrent ok"
