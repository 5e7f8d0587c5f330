#!/usr/bin/python3
"""A small HTTP server for the tests of remote model sources (tests/unit/test_source.c,
tests/cli/pull*.sh). It only ever listens on 127.0.0.1.

    server.py --root DIR --port-file FILE [--control FILE] [--log FILE]

Serves the files in DIR:
  /files/NAME                   the file, ETag "<sha256>" (as Hugging Face LFS files), Range,
                                If-None-Match (304)
  /plain/NAME                   the same with an ETag that is not a SHA-256
  /redirect/NAME                302 to /files/NAME
  /OWNER/REPO/resolve/REV/NAME  Hugging Face style: 302 to /blobs/NAME with X-Linked-Etag,
                                X-Linked-Size and X-Repo-Commit; /blobs/NAME as /files/NAME
  /elsewhere/PORT/NAME          302 to http://127.0.0.2:PORT/files/NAME (another host)

Behaviour switches come from the JSON control file, re-read whenever it changes (the counters
restart then):
  {"status": 404}          answer file requests with this status
  {"auth": "TOKEN"}        require "Authorization: Bearer TOKEN" (else 401)
  {"cut": N, "cut_times": K}   send N body bytes of the next K transfers, then close
  {"stall_after": N, "stall_s": S}  send N body bytes, then sleep S seconds (default 60)
  {"wrong_sha": true}      announce the SHA-256 of other bytes in ETag / X-Linked-Etag
  {"rate": BYTES_PER_S}    throttle bodies
  {"no_range": true}       ignore Range headers (always 200 with the whole file)
  {"header_bytes": N}      add a header of N bytes to file responses (hostile: huge headers)
  {"length": "V"}          send Content-Length: V instead of the true length (hostile sizes)
  {"content_range": "V"}   answer range requests with Content-Range: V (hostile ranges)
  {"etag": "V"}            send ETag: V for /files/ (hostile identities)

A request for an absolute URL (as to a proxy, http_proxy=http://127.0.0.1:PORT) is served as
the URL's path: the tests use it to show that proxies come from the environment.

Every request is appended to the log file as one JSON line: method, path, status, range,
inm (If-None-Match), auth (the Authorization header or null), host, bytes (body bytes sent).
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.control = {}
        self.control_mtime = None
        self.cut_used = 0
        self.sha_cache = {}

    def ctl(self):
        with self.lock:
            path = self.args.control
            if path:
                try:
                    st = os.stat(path)
                    key = (st.st_mtime_ns, st.st_size, st.st_ino)
                except OSError:
                    key = None
                if key != self.control_mtime:
                    self.control_mtime = key
                    self.cut_used = 0
                    try:
                        with open(path) as f:
                            self.control = json.load(f) if key else {}
                    except (OSError, ValueError):
                        self.control = {}
            return dict(self.control)

    def take_cut(self, ctl):
        """The number of bytes to cut this transfer at, or None."""
        if "cut" not in ctl:
            return None
        with self.lock:
            if self.cut_used >= ctl.get("cut_times", 1):
                return None
            self.cut_used += 1
            return int(ctl["cut"])

    def sha(self, path):
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        with self.lock:
            if key in self.sha_cache:
                return self.sha_cache[key]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        with self.lock:
            self.sha_cache[key] = h.hexdigest()
        return h.hexdigest()

    def log(self, entry):
        if not self.args.log:
            return
        with self.lock:
            with open(self.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wandler-test/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def finish_request_log(self, status, sent):
        self.server.state.log({
            "method": self.command,
            "path": self.path,
            "status": status,
            "range": self.headers.get("Range"),
            "inm": self.headers.get("If-None-Match"),
            "auth": self.headers.get("Authorization"),
            "host": self.headers.get("Host"),
            "bytes": sent,
        })

    def simple(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.finish_request_log(status, len(body) if self.command != "HEAD" else 0)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        state = self.server.state
        ctl = state.ctl()
        path = self.path
        if path.startswith("http://"):  # a request to us as a proxy: serve it as our own path
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        parts = path.split("?")[0].split("/")
        root = state.args.root
        if ctl.get("auth"):
            if self.headers.get("Authorization") != "Bearer " + ctl["auth"]:
                return self.simple(401, b"unauthorized\n", [("WWW-Authenticate", "Bearer")])
        if "status" in ctl:
            code = int(ctl["status"])
            return self.simple(code, ("error %d\n" % code).encode())
        # /OWNER/REPO/resolve/REV/NAME -> /blobs/NAME
        if len(parts) >= 6 and parts[3] == "resolve":
            name = "/".join(parts[5:])
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                return self.simple(404, b"no such file\n", [("X-Error-Code", "EntryNotFound")])
            sha = self.announced_sha(path, ctl)
            return self.simple(302, b"", [
                ("Location", "/blobs/" + name + "?rev=" + parts[4]),
                ("X-Linked-Etag", '"%s"' % sha),
                ("X-Linked-Size", str(os.path.getsize(path))),
                ("ETag", '"%s"' % sha),
                ("X-Repo-Commit", "0" * 40),
            ])
        if len(parts) >= 3 and parts[1] == "redirect":
            return self.simple(302, b"", [("Location", "/files/" + "/".join(parts[2:]))])
        if len(parts) >= 4 and parts[1] == "elsewhere":
            return self.simple(302, b"", [("Location", "http://127.0.0.2:%s/files/%s" % (parts[2], "/".join(parts[3:])))])
        if len(parts) >= 3 and parts[1] in ("files", "blobs", "plain"):
            path = os.path.join(root, "/".join(parts[2:]))
            if not os.path.isfile(path):
                return self.simple(404, b"no such file\n")
            return self.serve_file(path, ctl, parts[1] == "plain")
        return self.simple(404, b"unknown path\n")

    def announced_sha(self, path, ctl):
        sha = self.server.state.sha(path)
        if ctl.get("wrong_sha"):
            sha = hashlib.sha256(b"other bytes").hexdigest()
        return sha

    def serve_file(self, path, ctl, plain):
        state = self.server.state
        size = os.path.getsize(path)
        if plain:
            st = os.stat(path)
            etag = '"p-%x-%x"' % (st.st_mtime_ns, size)
        else:
            etag = ctl.get("etag") or '"%s"' % self.announced_sha(path, ctl)
        inm = self.headers.get("If-None-Match")
        if inm and inm.strip() == etag:
            return self.simple(304, b"", [("ETag", etag)])
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not ctl.get("no_range") and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= size:
                return self.simple(416, b"", [("Content-Range", "bytes */%d" % size)])
            status = 206
        length = size - start
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(ctl.get("length", length)))
        self.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            self.send_header("Content-Range", ctl.get("content_range", "bytes %d-%d/%d" % (start, size - 1, size)))
        if ctl.get("header_bytes"):
            self.send_header("X-Padding", "p" * int(ctl["header_bytes"]))
        self.end_headers()
        if self.command == "HEAD":
            return self.finish_request_log(status, 0)
        cut = state.take_cut(ctl)
        stall_after = ctl.get("stall_after")
        rate = ctl.get("rate")
        sent = 0
        t0 = time.monotonic()
        try:
            with open(path, "rb") as f:
                f.seek(start)
                while sent < length:
                    if stall_after is not None and sent >= stall_after:
                        self.wfile.flush()
                        time.sleep(float(ctl.get("stall_s", 60)))
                        break
                    n = min(16384, length - sent)
                    if cut is not None:
                        n = min(n, cut - sent)
                        if n <= 0:
                            break
                    if stall_after is not None:
                        n = min(n, stall_after - sent) or n
                    block = f.read(n)
                    if not block:
                        break
                    self.wfile.write(block)
                    sent += len(block)
                    if rate:
                        ahead = sent / float(rate) - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.finish_request_log(status, sent)
        if sent < length or "length" in ctl:  # cut, or the length was a lie: hang up
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up: not news
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--control")
    ap.add_argument("--log")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    server.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
