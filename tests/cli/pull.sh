#!/usr/bin/env bash
# `wandler pull`, `ls` and `rm` against the test server on 127.0.0.1: a progress bar on a
# terminal (a pty), plain lines otherwise; the cache listed and emptied; Ctrl-C keeps the partial
# file and the next pull resumes it; `wandler run hf://...` pulls on first use; offline mode.
set -uo pipefail
wandler=$1
tmp=$(mktemp -d)
source "${WANDLER_SOURCE_DIR:?}/tests/source/lib.sh"
trap 'stop_server; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export WANDLER_CACHE_DIR="$tmp/cache"
start_server "$tmp/server"
model="$src/models/stories260K.gguf"

# on a terminal: a bar redrawn in place with percent, bytes, speed and ETA
control '{"rate": 2000000}'
run_pty() { # command... (output of the pty on stdout)
  if command -v script >/dev/null; then
    script -q -e -c "$(printf '%q ' "$@")" /dev/null
  else
    python3 -c 'import os,pty,sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))' "$@"
  fi
}
run_pty "$wandler" pull "$base/files/stories260K.gguf" > "$tmp/tty.out" || { cat "$tmp/tty.out"; fail "pull on a pty"; }
bars=$(tr '\r' '\n' < "$tmp/tty.out" | grep -cE '^downloading +[0-9]+% \[[=> ]+\] .* / 1\.2 MB .*B/s +ETA [0-9]+:[0-9]{2}')
[ "$bars" -ge 2 ] || { cat -v "$tmp/tty.out"; fail "no progress bar redrawn on the terminal ($bars)"; }
grep -q 'downloading 100%' "$tmp/tty.out" || fail "the bar did not reach 100%"
grep -q 'verifying SHA-256' "$tmp/tty.out" || fail "no verify step shown"
echo "  pty: the bar was drawn $bars times; last: $(tr '\r' '\n' < "$tmp/tty.out" | grep 'downloading 100%' | tail -n 1 | sed 's/\x1b\[K//')"

# not a terminal: plain lines, no carriage returns; stdout is the cached file's path
control '{}'
"$wandler" pull "$base/plain/stories260K.gguf" > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err"; fail "pull"; }
grep -q $'\r' "$tmp/err" && fail "carriage returns in plain output"
grep -q '^downloading: 100% (1.2 MB of 1.2 MB' "$tmp/err" || { cat "$tmp/err"; fail "plain progress lines"; }
path=$(cat "$tmp/out")
case "$path" in "$WANDLER_CACHE_DIR"/url/127.0.0.1_"$port"/*/stories260K.gguf) ;; *) fail "path '$path'";; esac
cmp -s "$path" "$model" || fail "the cached file differs from the model"
"$wandler" pull "$base/plain/stories260K.gguf" 2> "$tmp/err" > /dev/null || fail "second pull"
grep -q 'is in the cache' "$tmp/err" || { cat "$tmp/err"; fail "second pull is not a hit"; }

# ls and rm
"$wandler" ls > "$tmp/ls" 2> "$tmp/ls.err" || fail "ls"
[ "$(grep -c '1.2 MB' "$tmp/ls")" -eq 2 ] || { cat "$tmp/ls"; fail "ls lists two models"; }
grep -q "2 models, 2.4 MB in $WANDLER_CACHE_DIR" "$tmp/ls.err" || { cat "$tmp/ls.err"; fail "ls summary"; }
"$wandler" ls --paths | grep -qF "$path" || fail "ls --paths"
"$wandler" rm "$base/files/stories260K.gguf" 2> "$tmp/err" || fail "rm"
grep -q removed "$tmp/err" || fail "rm message"
[ "$("$wandler" ls 2>/dev/null | grep -c '1.2 MB')" -eq 1 ] || fail "ls after rm"
"$wandler" rm "$base/files/stories260K.gguf" 2> "$tmp/err"; [ $? -eq 1 ] || fail "rm of a missing entry exits 1"
grep -q 'not in the cache' "$tmp/err" || fail "rm message for a missing entry"

# a cached model's repacked weights (repack_cache.h: Q4_0 on CPUs with AVX-512 VNNI) are listed
# with it and removed with it
"$wandler" mkmodel -q --arch llama --shape tiny --type Q4_0 "$tmp/server/root/tiny-q4.gguf" || fail "mkmodel"
"$wandler" run "$base/files/tiny-q4.gguf" -p "Once" -n 2 --temp 0 --no-echo > /dev/null 2> "$tmp/err" ||
  { cat "$tmp/err"; fail "run of a Q4_0 model"; }
if ls "$WANDLER_CACHE_DIR"/repack/*.r16 > /dev/null 2>&1; then
  "$wandler" ls 2>/dev/null | grep -q 'tiny-q4.gguf  (+ .* of repacked weights)' ||
    { "$wandler" ls; fail "ls does not show the repacked weights"; }
  "$wandler" rm "$base/files/tiny-q4.gguf" 2> "$tmp/err" || { cat "$tmp/err"; fail "rm of a repacked model"; }
  grep -q 'removed .* and its repacked weights' "$tmp/err" || { cat "$tmp/err"; fail "rm message"; }
  ls "$WANDLER_CACHE_DIR"/repack/*.r16 > /dev/null 2>&1 && fail "rm left the repacked weights"
  echo "  repacked weights listed and removed with their model"
  # a model file outside the cache: its repacked weights are listed on a line of their own and
  # counted in the total
  "$wandler" ls 2>/dev/null | grep -q 'outside the cache' && fail "ls lists repacked weights that are gone"
  "$wandler" run "$tmp/server/root/tiny-q4.gguf" -p "Once" -n 2 --temp 0 --no-echo > /dev/null 2> "$tmp/err" ||
    { cat "$tmp/err"; fail "run of a local Q4_0 model"; }
  "$wandler" ls > "$tmp/out" 2> "$tmp/err"
  grep -q '^ *[0-9.]* [kMG]*B  repacked weights of 1 model file outside the cache$' "$tmp/out" ||
    { cat "$tmp/out"; fail "ls does not show the repacked weights of a local model file"; }
  size=$(stat -c %s "$WANDLER_CACHE_DIR"/repack/*.r16)
  echo "  repacked weights of a local model file listed ($size bytes; $(cat "$tmp/err"))"
else
  "$wandler" rm "$base/files/tiny-q4.gguf" 2> /dev/null || fail "rm of a model"
  echo "  (nothing repacked on this CPU: the repacked weights' part is not checked)"
fi

# Ctrl-C keeps the partial download; the next pull resumes it
control '{"rate": 500000}'
"$wandler" pull "$base/files/stories260K.gguf" > /dev/null 2> "$tmp/err" &
pid=$!; sleep 0.8; kill -INT $pid; wait $pid; rc=$?
[ $rc -eq 130 ] || { cat "$tmp/err"; fail "interrupted pull exits 130 (got $rc)"; }
grep -q 'interrupted; the partial download is kept' "$tmp/err" || fail "interrupt message"
"$wandler" ls 2>/dev/null | grep -q 'partial: [0-9]*% of 1.2 MB' || fail "ls shows the partial download"
control '{}'
"$wandler" pull "$base/files/stories260K.gguf" > /dev/null 2> "$tmp/err" || fail "resumed pull"
grep -q 'resumed after' "$tmp/err" || { cat "$tmp/err"; fail "the pull did not resume"; }
grep -q 'bytes=' "$log" || fail "no range request"

# errors
"$wandler" pull "$base/files/missing.gguf" > /dev/null 2> "$tmp/err"; [ $? -eq 1 ] || fail "404 exit code"
grep -q WANDLER_ERR_REMOTE_NOT_FOUND "$tmp/err" || fail "404 message"
"$wandler" pull "$base/files/page.gguf" > /dev/null 2> "$tmp/err"; [ $? -eq 1 ] || fail "not GGUF exit code"
grep -q WANDLER_ERR_NOT_GGUF "$tmp/err" || fail "not GGUF message"
"$wandler" pull ./local.gguf > /dev/null 2>&1; [ $? -eq 2 ] || fail "pull of a local path is a usage error"
"$wandler" pull "hf://just-owner" > /dev/null 2> "$tmp/err"; [ $? -eq 1 ] || fail "malformed hf:// exit code"
grep -q 'hf://OWNER/REPO/FILE.gguf' "$tmp/err" || fail "malformed hf:// message"

# `wandler run hf://...` pulls on first use, then runs from the cache, also offline
export WANDLER_HF_ENDPOINT="$base"
"$wandler" run "$model" -p "Once upon a time" -n 24 --temp 0 --no-echo > "$tmp/local" 2>/dev/null || fail "local run"
"$wandler" run hf://someone/stories/stories260K.gguf -p "Once upon a time" -n 24 --temp 0 --no-echo \
  > "$tmp/remote" 2> "$tmp/err" || { cat "$tmp/err"; fail "run hf://"; }
cmp -s "$tmp/local" "$tmp/remote" || fail "run hf:// text differs from the local file's"
grep -q "^downloading: 100%" "$tmp/err" || { cat "$tmp/err"; fail "run hf:// shows no download progress"; }
[ -f "$WANDLER_CACHE_DIR/hf/someone/stories/main/stories260K.gguf" ] || fail "hf:// entry not in the cache"
WANDLER_OFFLINE=1 "$wandler" run hf://someone/stories/stories260K.gguf -p "Once upon a time" -n 24 --temp 0 \
  --no-echo > "$tmp/offline" 2>/dev/null || fail "offline run from the cache"
cmp -s "$tmp/local" "$tmp/offline" || fail "offline text"
WANDLER_OFFLINE=1 "$wandler" run hf://someone/stories/other.gguf > /dev/null 2> "$tmp/err"; [ $? -eq 1 ] || fail "offline miss"
grep -q WANDLER_ERR_OFFLINE "$tmp/err" || { cat "$tmp/err"; fail "offline message"; }
echo "pull ok"
