#!/usr/bin/env bash
# `wandler bench --modes` of a URL reports the model cache per mode: the first load downloads
# (miss, the whole file downloaded), the next ones are hits (the whole file reused, nothing
# downloaded); plain `wandler bench URL` (the engine alone) pulls the file first.
set -uo pipefail
wandler=$1
tmp=$(mktemp -d)
source "${WANDLER_SOURCE_DIR:?}/tests/source/lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export WANDLER_CACHE_DIR="$tmp/cache"
start_server "$tmp/server"
size=$(stat -c %s "$src/models/stories260K.gguf")
"$wandler" bench "$base/files/stories260K.gguf" --modes inline,thread,process --pp 8 --tg 4 -r 1 --json \
  > "$tmp/bench.json" 2> "$tmp/err" || { cat "$tmp/err"; fail "bench of a URL"; }
python3 - "$tmp/bench.json" "$size" <<'PY' || fail "cache figures in bench --json"
import json, sys
d = json.load(open(sys.argv[1])); size = int(sys.argv[2]); m = d["modes"]
assert (m["inline"]["cache"], m["inline"]["bytes_downloaded"], m["inline"]["bytes_reused"]) == ("miss", size, 0), m["inline"]
for k in ("thread", "process"):
    assert (m[k]["cache"], m[k]["bytes_downloaded"], m[k]["bytes_reused"]) == ("hit", 0, size), m[k]
print("  bench --json: inline miss (%d bytes downloaded), thread and process hits" % size)
PY
# the table: a cache line per mode; a local file has none
"$wandler" bench "$base/files/stories260K.gguf" --modes thread --pp 8 --tg 4 -r 1 > "$tmp/table" 2>/dev/null \
  || fail "bench table"
grep -q '^thread: model cache hit, 0.0 MiB downloaded, 1.1 MiB reused' "$tmp/table" || { cat "$tmp/table"; fail "table line"; }
"$wandler" bench "$src/models/stories260K.gguf" --modes thread --pp 8 --tg 4 -r 1 > "$tmp/local" 2>/dev/null \
  || fail "bench local"
grep -q 'model cache' "$tmp/local" && fail "a local file has no cache line"
# without --modes bench runs the engine on the file: a URL is pulled first (here: a hit)
"$wandler" bench --pp 8 --tg 4 -r 1 --no-bw "$base/files/stories260K.gguf" > "$tmp/engine" 2> "$tmp/err" \
  || { cat "$tmp/err"; fail "engine bench of a URL"; }
grep -q 'is in the cache' "$tmp/err" || { cat "$tmp/err"; fail "engine bench did not use the cache"; }
echo "pull_bench ok"
