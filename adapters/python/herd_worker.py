"""herd worker adapter for Python: write three functions, never a server.

    import herd_worker

    def train(req):   # req.files: local paths; req.state_dir: the model's directory
        ...           # return any JSON value: it becomes the job's result
    def input(req):
        ...
    def output(req):
        return [0.5]  # a list of numbers: the outputVector

    herd_worker.run(train=train, input=input, output=output, setup=load_libraries)

Speaks herd's worker protocol version 1 (docs/worker-protocol.md) on stdin and
stdout. Standard library only; works with Debian's /usr/bin/python3. Anything
the algorithm prints goes to stderr, which herd keeps as the job's log.
"""

import json
import signal
import sys
import traceback

PROTOCOL = 1

__all__ = ["run", "Request", "Cancelled"]


class Cancelled(Exception):
    """Raised inside a handler when herd cancels the request (SIGINT)."""


class Request:
    """One request from herd.

    id: the request id; op: "train", "input" or "output"; model: the model key;
    files: local paths of the request's files, fetched by herd; uris: the URIs
    the client sent; state_dir: the model's state directory (for output, the
    latest saved version: read it, do not write it).
    """

    __slots__ = ("id", "op", "model", "files", "uris", "state_dir", "_send")

    def __init__(self, msg, send):
        self.id = msg.get("id", "")
        self.op = msg.get("op", "")
        self.model = msg.get("model", "default")
        self.files = msg.get("files") or []
        self.uris = msg.get("uris") or self.files
        self.state_dir = msg.get("stateDir", "")
        self._send = send

    def progress(self, fraction, message=""):
        """Report progress, a number from 0 to 1, visible in GET /status."""
        self._send({"type": "progress", "id": self.id, "progress": float(fraction), "message": message})


_busy = False


def _on_sigint(signum, frame):
    # Only a running request can be cancelled; a late signal between requests is ignored.
    if _busy:
        raise Cancelled("cancelled by herd")


def run(train=None, input=None, output=None, setup=None):
    """Serve requests until stdin closes. Handlers take a Request."""
    global _busy
    out = sys.stdout
    sys.stdout = sys.stderr  # the algorithm's prints must not corrupt the protocol
    signal.signal(signal.SIGINT, _on_sigint)

    def send(msg):
        out.write(json.dumps(msg, separators=(",", ":")) + "\n")
        out.flush()

    if setup is not None:
        setup()
    send({"type": "ready", "protocol": PROTOCOL})

    handlers = {"train": train, "input": input, "output": output}
    stdin = sys.stdin.buffer
    while True:
        try:
            line = stdin.readline()
        except Cancelled:
            continue
        if not line:
            return
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError as e:
            print("herd_worker: cannot parse request: %s" % e, file=sys.stderr)
            continue
        req = Request(msg, send)
        handler = handlers.get(req.op)
        if handler is None:
            send({"type": "error", "id": req.id, "error": "this worker does not implement %r" % req.op})
            continue
        try:
            _busy = True
            try:
                result = handler(req)
            finally:
                _busy = False
            if req.op == "output":
                vector = [float(x) for x in (result if result is not None else [])]
                send({"type": "done", "id": req.id, "outputVector": vector})
            else:
                send({"type": "done", "id": req.id, "result": result})
        except Cancelled:
            send({"type": "error", "id": req.id, "error": "cancelled"})
        except Exception as e:  # the algorithm's failure is the request's error, not the worker's
            traceback.print_exc(file=sys.stderr)
            send({"type": "error", "id": req.id, "error": "%s: %s" % (type(e).__name__, e)})
