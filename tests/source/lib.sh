# lib.sh - sourced by tests/cli/pull*.sh: the test HTTP server (server.py) on 127.0.0.1.
#   start_server DIR   starts it with DIR/root as its files (the bundled model and a page that
#                      is not GGUF); sets $port, $base (http://127.0.0.1:PORT), $control, $log
#   control JSON       replaces its behaviour switches (see server.py)
#   body_transfers     how many logged requests carried file bytes
#   stop_server        stops it
src=${WANDLER_SOURCE_DIR:?}
# loopback requests must not go to a proxy of the environment
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY HF_TOKEN HF_ENDPOINT WANDLER_OFFLINE
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

start_server() {
  local dir=$1
  mkdir -p "$dir/root"
  ln -sf "$src/models/stories260K.gguf" "$dir/root/stories260K.gguf"
  printf '<!DOCTYPE html><html>not a model</html>\n' > "$dir/root/page.gguf"
  control="$dir/control.json"; log="$dir/log.jsonl"
  echo '{}' > "$control"; : > "$log"
  /usr/bin/python3 "$src/tests/source/server.py" --root "$dir/root" --port-file "$dir/port" \
    --control "$control" --log "$log" >/dev/null 2>&1 &
  server_pid=$!
  for _ in $(seq 1 500); do [ -s "$dir/port" ] && break; sleep 0.02; done
  [ -s "$dir/port" ] || { echo "FAIL: the test server did not start" >&2; exit 1; }
  port=$(cat "$dir/port"); base="http://127.0.0.1:$port"
}

control() { printf '%s\n' "$1" > "$control.tmp" && mv "$control.tmp" "$control"; }

body_transfers() {
  sleep 0.2 # the server logs a request just after answering it
  python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["bytes"] > 0))' "$log"
}

stop_server() { [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=; }
