#!/usr/bin/env bash
# The CLI end to end: `wandler run` reproduces the reference's greedy text on the bundled model,
# prints its summary, finds the bundled model by itself; inspect and tokenize work; bad
# arguments and bad files give clear errors and the right exit codes.
set -uo pipefail
wandler=$1
shared=${WANDLER_SHARED_DIR:?}
src=${WANDLER_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

golden="$shared/golden/stories260K.greedy.jsonl"
first=$(head -n 1 "$golden")
prompt=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["prompt"])' "$first")
python3 -c 'import json,sys; sys.stdout.write(json.loads(sys.argv[1])["text"] + "\n")' "$first" > "$tmp/expect"
ids=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["prompt_ids"])' "$first")

# greedy run on the bundled model (found next to the binary), text to stdout only
"$wandler" run -p "$prompt" -n 64 --temp 0 --no-echo > "$tmp/out" 2> "$tmp/err" || fail "run exited $?"
cmp -s "$tmp/out" "$tmp/expect" || { diff "$tmp/out" "$tmp/expect"; fail "run text differs from golden"; }
grep -q "5 prompt tokens, 64 generated (length)" "$tmp/err" || { cat "$tmp/err"; fail "summary"; }
grep -Eq "decode [0-9.]+ tok/s" "$tmp/err" || fail "summary lacks decode speed"
grep -Eq "prefill [0-9.]+ tok/s" "$tmp/err" || fail "summary lacks prefill speed"
sed 's/^/  /' "$tmp/err" | tail -n 1

# echo puts the prompt first; WANDLER_MODEL picks the model
WANDLER_MODEL="$src/models/stories260K.gguf" "$wandler" run -p "$prompt" -n 64 --temp 0 > "$tmp/out2" 2>/dev/null \
  || fail "run with WANDLER_MODEL"
[ "$(cat "$tmp/out2")" = "$prompt$(cat "$tmp/expect")" ] || fail "echoed output"

# every worker mode gives the golden text and names itself in the summary
for mode in inline thread process; do
  "$wandler" run -p "$prompt" -n 64 --temp 0 --no-echo --worker $mode --timeout-ms 60000 --idle-ms 1000 \
    > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err"; fail "run --worker $mode exited $?"; }
  cmp -s "$tmp/out" "$tmp/expect" || fail "run --worker $mode text differs from golden"
  grep -q "mode $mode" "$tmp/err" || { cat "$tmp/err"; fail "summary lacks mode $mode"; }
done
"$wandler" run --worker sideways >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --worker exit code"
# a timeout ends the run with exit 1 and says so (a 1 ms timeout cannot fit 100000 tokens)
"$wandler" run -n 100000 --timeout-ms 1 --no-echo > /dev/null 2> "$tmp/e"; [ $? -eq 1 ] || fail "timeout exit code"
grep -q WANDLER_ERR_TIMEOUT "$tmp/e" || { cat "$tmp/e"; fail "timeout message"; }

# the same seed gives the same text
a=$("$wandler" run -n 40 --seed 9 2>/dev/null); b=$("$wandler" run -n 40 --seed 9 2>/dev/null)
[ "$a" = "$b" ] || fail "seeded runs differ"

# tokenize: the golden prompt ids, with and without BOS
[ "$("$wandler" tokenize "$src/models/stories260K.gguf" --ids "$prompt")" = "$ids" ] || fail "tokenize ids"
"$wandler" tokenize "$src/models/stories260K.gguf" "$prompt" | grep -q "^     1 -> '<s>'" || fail "tokenize pieces"
echo -n "$prompt" | "$wandler" tokenize "$src/models/stories260K.gguf" --stdin --no-bos --ids | grep -q '^\[403' \
  || fail "tokenize --stdin --no-bos"

# inspect: header, a key and a tensor
"$wandler" inspect "$src/models/stories260K.gguf" > "$tmp/insp" || fail "inspect"
grep -q "GGUF version 3" "$tmp/insp" || fail "inspect header"
grep -q "llama.embedding_length" "$tmp/insp" || fail "inspect key"
grep -Eq "blk.0.attn_q.weight +F32 +\[64, 64\]" "$tmp/insp" || fail "inspect tensor"

# errors: usage errors exit 2, bad files exit 1 with the status name
"$wandler" run --temp abc >/dev/null 2>"$tmp/e"; [ $? -eq 2 ] || fail "bad --temp exit code"
grep -q "temp" "$tmp/e" || fail "bad --temp message"
"$wandler" run --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option exit code"
"$wandler" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command exit code"
"$wandler" run /nonexistent.gguf >/dev/null 2>"$tmp/e"; [ $? -eq 1 ] || fail "missing model exit code"
grep -q WANDLER_ERR_NOT_FOUND "$tmp/e" || fail "missing model message"
head -c 100 "$src/models/stories260K.gguf" > "$tmp/trunc.gguf"
"$wandler" run "$tmp/trunc.gguf" >/dev/null 2>"$tmp/e"; [ $? -eq 1 ] || fail "truncated model exit code"
grep -q WANDLER_ERR_GGUF_TRUNCATED "$tmp/e" || { cat "$tmp/e"; fail "truncated model message"; }
"$wandler" inspect "$tmp/trunc.gguf" >/dev/null 2>&1; [ $? -eq 1 ] || fail "inspect truncated exit code"
"$wandler" --help | grep -q "usage: wandler" || fail "help"
echo "cli ok"
