#!/usr/bin/env bash
# Smoke test of `wandler bench` (it only checks that the benchmark runs, never its speed):
# the llama-bench style engine run on the bundled model with tiny --pp/--tg, its JSON fields,
# depths, the table output, the public-API mode comparison, and argument errors.
set -uo pipefail
wandler=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$wandler" bench --pp 8 --tg 4 -r 2 -t 2 --depth 0,16 --json > "$tmp/j" 2> "$tmp/err" || { cat "$tmp/err"; fail "bench --json exited $?"; }
python3 - "$tmp/j" <<'PY' || fail "bench JSON: $(cat "$tmp/j")"
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("model", "threads", "pp_tokens_per_s", "tg_tokens_per_s", "pp_spread", "tg_spread",
          "read_bandwidth_gb_s", "weight_bytes_per_token", "tg_bandwidth_fraction", "depths"):
    assert k in j, k
assert j["model"] == "stories260K.gguf", j["model"]
assert j["threads"] == 2 and j["pp"] == 8 and j["tg"] == 4 and j["reps"] == 2
assert j["pp_tokens_per_s"] > 0 and j["tg_tokens_per_s"] > 0
assert j["read_bandwidth_gb_s"] > 0 and j["weight_bytes_per_token"] > 0
assert [d["depth"] for d in j["depths"]] == [0, 16]
assert all(d["tg_tokens_per_s"] > 0 and d["pp_min"] <= d["pp_tokens_per_s"] <= d["pp_max"] for d in j["depths"])
PY

"$wandler" bench --pp 8 --tg 4 -r 1 --no-bw > "$tmp/t" 2>&1 || fail "bench table exited $?"
grep -q '^pp8 ' "$tmp/t" && grep -q '^tg4 ' "$tmp/t" || fail "bench table: $(cat "$tmp/t")"
"$wandler" bench --pp 0 --tg 4 -r 1 --no-bw --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["pp_tokens_per_s"] == 0 and j["tg_tokens_per_s"] > 0' \
  || fail "bench --pp 0"

"$wandler" bench --modes inline --pp 8 --tg 4 -r 1 --json > "$tmp/m" 2> "$tmp/err" || { cat "$tmp/err"; fail "bench --modes exited $?"; }
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["mode"] == "inline" and j["tg_tokens_per_s"] > 0' "$tmp/m" \
  || fail "bench --modes JSON: $(cat "$tmp/m")"

"$wandler" bench --pp 0 --tg 0 > /dev/null 2>&1; [ $? -eq 2 ] || fail "--pp 0 --tg 0 should be a usage error"
"$wandler" bench --depth x > /dev/null 2>&1; [ $? -eq 2 ] || fail "--depth x should be a usage error"
"$wandler" bench /nonexistent.gguf --pp 8 --tg 4 > /dev/null 2> "$tmp/err"; [ $? -eq 1 ] || fail "a missing model should fail"
grep -q "nonexistent" "$tmp/err" || fail "the error names the file: $(cat "$tmp/err")"
echo "bench smoke test passed"
