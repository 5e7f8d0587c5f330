#!/usr/bin/env bash
# The text commands end to end: `wandler render` prints a template's prompt exactly;
# `wandler chat` holds a conversation from piped input (and /reset), deterministic with --temp 0.
set -uo pipefail
wandler=$1
shared=${WANDLER_SHARED_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]' > "$tmp/m.json"
"$wandler" render "$shared/tokenizer/ggml-vocab-qwen2.gguf" --messages "$tmp/m.json" --add-generation-prompt > "$tmp/out" \
  || fail "render qwen2"
printf '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' > "$tmp/expect"
cmp -s "$tmp/out" "$tmp/expect" || { diff "$tmp/out" "$tmp/expect"; fail "qwen2 rendering"; }
# a built-in template by name, messages from stdin, without the generation prompt
"$wandler" render --template chatml --messages - < "$tmp/m.json" > "$tmp/out2" || fail "render chatml"
grep -q '<|im_start|>user' "$tmp/out2" || fail "chatml content"
grep -q 'assistant' "$tmp/out2" && fail "no generation prompt was asked for"
# errors
"$wandler" render --template chatml --messages /nonexistent.json >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing messages"
printf '{"oops": 1}' > "$tmp/bad.json"
"$wandler" render --template chatml --messages "$tmp/bad.json" >/dev/null 2>"$tmp/e"; [ $? -eq 1 ] || fail "bad json"
grep -q "array" "$tmp/e" || fail "bad json message"
printf '{%% if x %%}unclosed' > "$tmp/bad.jinja"
"$wandler" render --template "$tmp/bad.jinja" --messages "$tmp/m.json" >/dev/null 2>"$tmp/e"; [ $? -eq 1 ] || fail "bad template"
grep -q WANDLER_ERR_TEMPLATE "$tmp/e" || { cat "$tmp/e"; fail "bad template message"; }

# chat: the bundled model has no template, so turns are joined as plain text
printf 'Once upon a time\n/reset\nOnce upon a time\n/exit\nnot read\n' | "$wandler" chat --temp 0 -n 12 > "$tmp/chat" 2>&1 \
  || fail "chat exited $?"
[ "$(wc -l < "$tmp/chat")" -eq 2 ] || { cat "$tmp/chat"; fail "two answers expected"; }
[ "$(sed -n 1p "$tmp/chat")" = "$(sed -n 2p "$tmp/chat")" ] || fail "/reset should make the same answer again"
grep -q "there was" "$tmp/chat" || fail "chat answer"
echo "chat ok"
