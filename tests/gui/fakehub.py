"""fakehub.py — a local stand-in for the Hugging Face Hub, for GUI tests.

Serves the files of local folders as repositories in the shape
app/hearth-hub.c reads: /api/models/OWNER/NAME/revision/REV (the commit),
/api/models/OWNER/NAME/tree/COMMIT?recursive=true (paths, sizes, sha256
as LFS objects) and /OWNER/NAME/resolve/COMMIT/PATH (the bytes, with Range).
Runs in a thread on 127.0.0.1 at a free port; point HF_ENDPOINT at .url.
"""
import hashlib
import http.server
import json
import os
import threading
import time
import urllib.parse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos, bytes_per_second=None):
        """repos: {"owner/name": folder}; bytes_per_second: serve file bytes at
        about that rate (a download slow enough to pause), else at once."""
        self.repos = {r: os.path.abspath(p) for r, p in repos.items()}
        self.requests = []
        self.ranges = []   # the Range header of each file request ("" without one)
        self.bytes_per_second = bytes_per_second
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_json(self, obj, status=200):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = urllib.parse.urlparse(self.path).path
                hub.requests.append(path)
                parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
                if len(parts) >= 5 and parts[0] == "api" and parts[1] == "models":
                    repo = f"{parts[2]}/{parts[3]}"
                    if repo not in hub.repos:
                        self.send_response(404)
                        self.send_header("X-Error-Code", "RepoNotFound")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if parts[4] == "revision":
                        return self.send_json({"id": repo, "sha": COMMIT})
                    if parts[4] == "tree":
                        return self.send_json(hub.tree(repo))
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo = f"{parts[0]}/{parts[1]}"
                    name = "/".join(parts[4:])
                    folder = hub.repos.get(repo)
                    f = os.path.join(folder, name) if folder else None
                    if not f or not os.path.isfile(f):
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    with open(f, "rb") as fh:
                        data = fh.read()
                    start = 0
                    rng = self.headers.get("Range")
                    hub.ranges.append(rng or "")
                    if rng and rng.startswith("bytes=") and rng[6:].split("-")[0].isdigit():
                        start = min(int(rng[6:].split("-")[0]), len(data))
                        self.send_response(206)
                        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    else:
                        self.send_response(200)
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    if not hub.bytes_per_second:
                        self.wfile.write(data[start:])
                        return
                    step = 16384
                    try:
                        for at in range(start, len(data), step):
                            self.wfile.write(data[at:at + step])
                            self.wfile.flush()
                            time.sleep(step / hub.bytes_per_second)
                    except (BrokenPipeError, ConnectionResetError):
                        pass   # the client stopped (paused)
                    return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tree(self, repo):
        folder = self.repos[repo]
        out = []
        for name in sorted(os.listdir(folder)):
            p = os.path.join(folder, name)
            if not os.path.isfile(p):
                continue
            with open(p, "rb") as fh:
                data = fh.read()
            out.append({"type": "file", "path": name, "size": len(data),
                        "lfs": {"oid": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}})
        return out

    def stop(self):
        self.server.shutdown()
