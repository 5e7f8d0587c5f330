#!/usr/bin/env bash
# `wandler quantize`: the bundled model quantized to Q8_0, Q4_0 and F16 is byte for byte the file
# llama.cpp's llama-quantize wrote (../shared/models/stories260K-*.gguf, made with
# `--tensor-type ffn_down=f16`, see PROVENANCE.md): same metadata, tensor order, formats and
# data. The quantized models run; bad input gives clear errors.
set -uo pipefail
wandler=$1
shared=${WANDLER_SHARED_DIR:?}
src=${WANDLER_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
model="$src/models/stories260K.gguf"

for t in Q8_0 Q4_0 F16; do
  "$wandler" quantize --tensor-type ffn_down=f16 "$model" "$tmp/$t.gguf" "$t" 2> "$tmp/err" || { cat "$tmp/err"; fail "quantize $t"; }
  cmp "$tmp/$t.gguf" "$shared/models/stories260K-$t.gguf" || fail "$t differs from llama-quantize's file"
  echo "  $t: identical to llama-quantize's output ($(stat -c %s "$tmp/$t.gguf") bytes)"
done

# without the override the 172-wide ffn_down rows cannot be Q8_0 blocks: F16, said on stderr,
# and the result is the same file (llama-quantize falls back to F16 too)
"$wandler" quantize "$model" "$tmp/fb.gguf" Q8_0 2> "$tmp/err" || fail "quantize without override"
grep -q "blk.0.ffn_down.weight: rows of 172 values are not whole 32-value blocks of Q8_0; using F16" "$tmp/err" \
  || { cat "$tmp/err"; fail "fallback note"; }
cmp -s "$tmp/fb.gguf" "$shared/models/stories260K-Q8_0.gguf" || fail "fallback file differs"
"$wandler" inspect "$tmp/fb.gguf" > "$tmp/insp" || fail "inspect"
grep -q "general.file_type *u32 *7" "$tmp/insp" || fail "file type"

# the quantized models run and start like the reference's greedy text for them
for t in Q8_0 Q4_0; do
  want=$(head -n 1 "$shared/golden/stories260K-$t.greedy.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["text"][:40])')
  got=$("$wandler" run "$tmp/$t.gguf" -p "Once upon a time" -n 16 --temp 0 --no-echo 2>"$tmp/err") || { cat "$tmp/err"; fail "run $t"; }
  [ "${got:0:${#want}}" = "${want:0:${#got}}" ] || fail "run $t: '$got' vs golden '$want'"
  grep -q "16 generated" "$tmp/err" || fail "run $t summary"
done

# a k-quant mix: made when quant.c writes the formats, else refused naming the tensor
if "$wandler" quantize "$model" "$tmp/km.gguf" Q4_K_M 2> "$tmp/err"; then
  "$wandler" run "$tmp/km.gguf" -n 8 --temp 0 >/dev/null 2>&1 || fail "run Q4_K_M"
  # rows of 64 are not 256-value blocks: Q4_K falls back to Q5_0, and says so; norms stay F32
  grep -q "blk.0.attn_q.weight: rows of 64 values are not whole 256-value blocks of Q4_K; using Q5_0" "$tmp/err" \
    || { cat "$tmp/err"; fail "Q4_K_M fallback note"; }
  "$wandler" inspect "$tmp/km.gguf" > "$tmp/insp" || fail "inspect Q4_K_M"
  grep -Eq "blk.0.attn_q.weight +Q5_0 " "$tmp/insp" || fail "Q4_K_M fallback format"
  grep -Eq "blk.0.attn_norm.weight +F32 " "$tmp/insp" && grep -Eq "output_norm.weight +F32 " "$tmp/insp" \
    || fail "Q4_K_M: norms are not F32"
  echo "  Q4_K_M: made and run (64-wide rows fall back to Q5_0, norms F32)"
else
  grep -q "does not write yet" "$tmp/err" || { cat "$tmp/err"; fail "Q4_K_M error"; }
  [ ! -e "$tmp/km.gguf" ] || fail "a failed quantize left its output behind"
  echo "  Q4_K_M: $(sed 's/^wandler quantize: //' "$tmp/err")"
fi

# errors
"$wandler" quantize "$tmp/Q8_0.gguf" "$tmp/x.gguf" Q4_0 2> "$tmp/e"; [ $? -eq 1 ] || fail "requantize exit code"
grep -q "is already Q8_0" "$tmp/e" || { cat "$tmp/e"; fail "requantize message"; }
"$wandler" quantize "$model" "$tmp/x.gguf" Q9_9 2> "$tmp/e"; [ $? -eq 2 ] || fail "unknown type exit code"
"$wandler" quantize --tensor-type ffn_down "$model" "$tmp/x.gguf" Q8_0 2> "$tmp/e"; [ $? -eq 1 ] || fail "bad override"
grep -q "PATTERN=TYPE" "$tmp/e" || fail "bad override message"
"$wandler" quantize /nonexistent.gguf "$tmp/x.gguf" Q8_0 2> "$tmp/e"; [ $? -eq 1 ] || fail "missing input"
grep -q WANDLER_ERR_NOT_FOUND "$tmp/e" || fail "missing input message"
"$wandler" quantize "$model" 2>/dev/null; [ $? -eq 2 ] || fail "usage exit code"
echo "quantize ok"
