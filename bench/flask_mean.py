"""The 2016 stack for comparison: Flask under uWSGI with the model in-process.

Serves POST /output for the same per-model mean as examples/mean-python,
reading the model from BENCH_STATE (a mean.json) once per process.
Run by bench/output-rps.sh; needs Debian's python3-flask, uwsgi and
uwsgi-plugin-python3.
"""
import json
import math
import os

from flask import Flask, jsonify, request

app = Flask(__name__)
ROOT = os.environ["BENCH_FILES"]
with open(os.environ["BENCH_STATE"]) as f:
    _state = json.load(f)
MEAN = [s / _state["n"] for s in _state["sum"]]


def read_vector(path):
    with open(path) as f:
        return [float(x) for x in f.read().replace(",", " ").split()]


@app.route("/output", methods=["POST"])
def output():
    body = request.get_json(force=True)
    files = body.get("Files") or body.get("files") or []
    out = []
    for name in files:
        v = read_vector(os.path.join(ROOT, name))
        out.append(math.sqrt(sum((a - b) ** 2 for a, b in zip(v, MEAN))))
    return jsonify({"outputVector": out})
