#!/usr/bin/env bash
# `wandler mkmodel`: the tiny shape of every architecture, in F32 and Q8_0, is made, inspected
# and run (greedy, inline and in a worker); the same seed gives the same bytes; a real vocabulary
# can be copied in; bad arguments give clear errors.
set -uo pipefail
wandler=$1
shared=${WANDLER_SHARED_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for arch in llama qwen2 qwen3 gemma2 gemma3 phi3; do
  for t in F32 Q8_0; do
    m="$tmp/$arch-$t.gguf"
    "$wandler" mkmodel --arch "$arch" --shape tiny --type "$t" --seed 7 "$m" 2> "$tmp/err" || { cat "$tmp/err"; fail "mkmodel $arch $t"; }
    "$wandler" inspect "$m" > "$tmp/insp" || fail "inspect $arch $t"
    grep -q "general.architecture *string *\"$arch\"" "$tmp/insp" || fail "$arch: architecture key"
    grep -q "tokenizer.ggml.tokens *array *string\[512\]" "$tmp/insp" || fail "$arch: vocabulary"
    grep -Eq "blk.1.ffn_down.weight +$t " "$tmp/insp" || fail "$arch: ffn_down format"
    # the loader's reading of the architecture, as inspect reports it
    case $arch in
      llama)  want="adjacent pairs over 16 of 16 dims, base 10000, Llama 3 frequency divisors" ;;
      qwen2)  want="separate q/k/v with biases" ;;
      qwen3)  want="4 query / 2 KV heads of 32" ;;
      gemma2) want="sliding window of 8 on 2 of 4 layers (0 2)" ;;
      gemma3) want="sliding window of 8 on 5 of 6 layers (0 1 2 3 4), RoPE base 10000 there" ;;
      phi3)   want="NeoX halves over 16 of 24 dims, base 10000, LongRoPE factors" ;;
    esac
    grep -qF "$want" "$tmp/insp" || { sed -n '/model as wandler/,$p' "$tmp/insp"; fail "$arch: inspect lacks '$want'"; }
    if [ $arch = gemma2 ]; then
      grep -qF "scores soft-capped at 0.15" "$tmp/insp" && grep -qF "logits soft-capped at 3" "$tmp/insp" \
        || fail "gemma2: soft-caps"
    fi
    a=$("$wandler" run "$m" -p "The quick brown fox" -n 24 --temp 0 --worker inline 2> "$tmp/err") || { cat "$tmp/err"; fail "run $arch $t"; }
    grep -q "24 generated" "$tmp/err" || { cat "$tmp/err"; fail "$arch $t: summary"; }
    b=$("$wandler" run "$m" -p "The quick brown fox" -n 24 --temp 0 --worker thread 2>/dev/null) || fail "run $arch $t (thread)"
    [ "$a" = "$b" ] || fail "$arch $t: inline and thread worker differ"
    printf '  %-7s %-5s %7d bytes  %s\n' "$arch" "$t" "$(stat -c %s "$m")" "$(tail -n 1 "$tmp/err" | grep -Eo 'decode [0-9.]+ tok/s')"
  done
done

# deterministic for a seed, different for another
"$wandler" mkmodel -q --arch gemma3 --shape tiny --type Q8_0 --seed 7 "$tmp/again.gguf" || fail "mkmodel again"
cmp -s "$tmp/again.gguf" "$tmp/gemma3-Q8_0.gguf" || fail "same seed, different bytes"
"$wandler" mkmodel -q --arch gemma3 --shape tiny --type Q8_0 --seed 8 "$tmp/other.gguf" || fail "mkmodel seed 8"
cmp -s "$tmp/other.gguf" "$tmp/gemma3-Q8_0.gguf" && fail "another seed, same bytes"

# a real vocabulary: its size becomes the model's, and its tokenizer runs
"$wandler" mkmodel -q --arch qwen2 --shape tiny --type Q8_0 --vocab "$shared/tokenizer/ggml-vocab-qwen2.gguf" "$tmp/qv.gguf" \
  || fail "mkmodel --vocab"
"$wandler" inspect "$tmp/qv.gguf" > "$tmp/insp" || fail "inspect qv"
grep -Eq "token_embd.weight +Q8_0 +\[64, 151936\]" "$tmp/insp" || fail "vocab size"
[ "$("$wandler" tokenize "$tmp/qv.gguf" --ids "Hello world")" = "[9707, 1879]" ] || fail "qwen2 tokenizer"
"$wandler" run "$tmp/qv.gguf" -p "Hello" -n 8 --temp 0 >/dev/null 2>&1 || fail "run with qwen2 vocab"

# --dims changes a shape
"$wandler" mkmodel -q --arch llama --dims embd=128,layers=3,heads=8,kv_heads=4,ff=256,vocab=1000 "$tmp/d.gguf" || fail "--dims"
"$wandler" inspect "$tmp/d.gguf" > "$tmp/insp" || fail "inspect --dims model"
grep -q "llama.block_count *u32 *3" "$tmp/insp" || fail "--dims layers"
"$wandler" run "$tmp/d.gguf" -n 4 --temp 0 >/dev/null 2>&1 || fail "run --dims model"

# inspect says why a file would not run (a vocabulary-only file has no weights)
"$wandler" inspect "$shared/tokenizer/ggml-vocab-qwen2.gguf" > "$tmp/insp" || fail "inspect vocab file"
grep -qF "not runnable: tensor 'token_embd.weight' is missing (WANDLER_ERR_MODEL_MISSING_TENSOR)" "$tmp/insp" \
  || fail "inspect: not runnable"

# errors
"$wandler" mkmodel --shape tiny "$tmp/x.gguf" 2> "$tmp/e"; [ $? -eq 2 ] || fail "tiny without arch"
"$wandler" mkmodel --arch mamba --shape tiny "$tmp/x.gguf" 2> "$tmp/e"; [ $? -eq 2 ] || fail "unknown arch"
"$wandler" mkmodel --shape gpt-5 "$tmp/x.gguf" 2> "$tmp/e"; [ $? -eq 2 ] || fail "unknown shape"
"$wandler" mkmodel --arch llama --dims heads=5 "$tmp/x.gguf" 2> "$tmp/e"; [ $? -eq 1 ] || fail "bad dims exit"
grep -q "do not divide" "$tmp/e" || { cat "$tmp/e"; fail "bad dims message"; }
[ ! -e "$tmp/x.gguf" ] || fail "a failed mkmodel left its output behind"
"$wandler" mkmodel --help > "$tmp/help" || fail "mkmodel --help"
grep -q "smollm2-135m" "$tmp/help" || fail "help lists the shapes"
echo "mkmodel ok"
