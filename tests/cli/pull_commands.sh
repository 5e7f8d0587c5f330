#!/usr/bin/env bash
# Every command takes a URL or hf:// MODEL: inspect, tokenize and render (which read the GGUF
# file themselves) pull it into the cache first and print what they print for the local file;
# run pulls through wandler_load_model. Hostile sources fail with a clear message and exit 1.
set -uo pipefail
wandler=$1
tmp=$(mktemp -d)
source "${WANDLER_SOURCE_DIR:?}/tests/source/lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export WANDLER_CACHE_DIR="$tmp/cache"
start_server "$tmp/server"
model="$src/models/stories260K.gguf"
export WANDLER_HF_ENDPOINT="$base"
url="$base/files/stories260K.gguf"
hf=hf://someone/stories/stories260K.gguf@v1

# inspect: the same report as for the local file (but for the file: line)
"$wandler" inspect "$model" | tail -n +2 > "$tmp/local.inspect" || fail "inspect local"
"$wandler" inspect "$url" > "$tmp/url.inspect" 2> "$tmp/err" || { cat "$tmp/err"; fail "inspect URL"; }
grep -q "^file: $WANDLER_CACHE_DIR/url/" "$tmp/url.inspect" || fail "inspect shows the cached file"
tail -n +2 "$tmp/url.inspect" | cmp -s - "$tmp/local.inspect" || fail "inspect of the URL differs"
grep -q 'downloaded 1.2 MB' "$tmp/err" || { cat "$tmp/err"; fail "inspect did not report the download"; }

# tokenize: hf:// with a revision; a TEXT that looks like a URL is text, not a model
"$wandler" tokenize "$model" "see https://example.com" > "$tmp/local.tok" || fail "tokenize local"
"$wandler" tokenize "$hf" "see https://example.com" > "$tmp/hf.tok" 2> "$tmp/err" || { cat "$tmp/err"; fail "tokenize hf://"; }
cmp -s "$tmp/local.tok" "$tmp/hf.tok" || fail "tokenize of hf:// differs"
[ -f "$WANDLER_CACHE_DIR/hf/someone/stories/v1/stories260K.gguf" ] || fail "hf:// entry"
"$wandler" tokenize "$hf" "again" > /dev/null 2> "$tmp/err" || fail "tokenize from the cache"
grep -q 'is in the cache' "$tmp/err" || { cat "$tmp/err"; fail "second tokenize is not a hit"; }

# render: MODEL after options that take values
printf '[{"role":"user","content":"hi"}]' > "$tmp/m.json"
printf '{%% for m in messages %%}<{{ m.role }}>{{ m.content }}{%% endfor %%}' > "$tmp/t.jinja"
"$wandler" render --messages "$tmp/m.json" --template "$tmp/t.jinja" "$model" > "$tmp/local.r" || fail "render local"
"$wandler" render --messages "$tmp/m.json" --template "$tmp/t.jinja" "$url" > "$tmp/url.r" 2>/dev/null || fail "render URL"
cmp -s "$tmp/local.r" "$tmp/url.r" || fail "render of the URL differs"
grep -q '<user>hi' "$tmp/url.r" || fail "render output"

# offline: from the cache, and a clear failure without it
WANDLER_OFFLINE=1 "$wandler" inspect "$url" > /dev/null 2>&1 || fail "offline inspect from the cache"
WANDLER_OFFLINE=1 "$wandler" inspect "$base/files/other.gguf" > /dev/null 2> "$tmp/err"; [ $? -eq 1 ] || fail "offline miss"
grep -q WANDLER_ERR_OFFLINE "$tmp/err" || { cat "$tmp/err"; fail "offline message"; }

# proxies come from the environment: a host that does not exist, reached through the test
# server acting as the proxy (no DNS lookup: the proxy is asked for the absolute URL)
http_proxy="$base" "$wandler" pull "http://models.invalid/files/stories260K.gguf" > "$tmp/out" 2> "$tmp/err" \
  || { cat "$tmp/err"; fail "pull through http_proxy"; }
cmp -s "$(cat "$tmp/out")" "$model" || fail "the file pulled through the proxy differs"
sleep 0.2
grep -q '"path": "http://models.invalid/files/stories260K.gguf"' "$log" || { cat "$log"; fail "not through the proxy"; }

# hostile sources: path traversal, bad URLs, reserved names; never a crash, always exit 1
for bad in 'hf://a/../../etc/passwd' 'hf://../x/y.gguf' 'hf://a/b/x/../../../y.gguf' 'hf://a/b/..' \
           'hf://a/b/c.gguf@../../x' 'hf://a/b/c.gguf.partial' 'http://' 'http://[::1/x.gguf' \
           "http://127.0.0.1:99999/x.gguf" "http://127.0.0.1:1/$(head -c 5000 /dev/zero | tr '\0' a).gguf"; do
  "$wandler" inspect "$bad" > /dev/null 2> "$tmp/err"; rc=$?
  [ $rc -eq 1 ] || { cat "$tmp/err"; fail "inspect '$bad' exited $rc"; }
  grep -qE 'WANDLER_ERR_(INVALID_ARGUMENT|NETWORK)' "$tmp/err" || { cat "$tmp/err"; fail "message for '$bad'"; }
done
[ ! -e "$WANDLER_CACHE_DIR/etc" ] && [ ! -e "$tmp/etc" ] || fail "a traversal created a directory"
echo "pull_commands ok"
