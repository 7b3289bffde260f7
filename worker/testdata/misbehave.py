"""A worker for herd's tests: the model key picks a misbehaviour.

ok: answers; fail: the algorithm raises; crash: the process exits; garbage:
writes a non-protocol line to stdout; hang: ignores SIGINT and sleeps; slow:
sleeps (cancellable); log: writes to stderr. HERD_TEST_RECORD, when set, names
a file each request's model and id is appended to (one line per execution).
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "adapters", "python"))
import herd_worker  # noqa: E402

REAL_STDOUT = sys.stdout


def handle(req):
    record = os.environ.get("HERD_TEST_RECORD")
    if record:
        with open(record, "a") as f:
            f.write("%s %s %s\n" % (req.op, req.model, req.id))
    model = req.model
    if model.startswith("fail"):
        raise ValueError("bad input for %s" % model)
    if model.startswith("crash"):
        print("about to crash", file=sys.stderr)
        sys.stderr.flush()
        os._exit(3)
    if model.startswith("garbage"):
        REAL_STDOUT.write("this is not JSON\n")
        REAL_STDOUT.flush()
        time.sleep(5)
    if model.startswith("hang"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        time.sleep(3600)
    if model.startswith("slow"):
        for i in range(100):
            req.progress(i / 100.0)
            time.sleep(0.05)
    if model.startswith("log"):
        print("hello from the worker", file=sys.stderr)
    if req.op == "output":
        return [float(len(req.files)), 1.5]
    if req.state_dir:
        with open(os.path.join(req.state_dir, "count"), "a") as f:
            f.write("x")
    return {"files": len(req.files), "model": model}


def setup():
    if os.environ.get("HERD_TEST_SETUP_FAIL"):
        raise SystemExit("setup failed on purpose")


if __name__ == "__main__":
    herd_worker.run(train=handle, input=handle, output=handle, setup=setup)
