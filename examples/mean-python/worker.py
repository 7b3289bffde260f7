"""A per-model running mean, served by herd.

Each input file holds one vector: numbers separated by spaces, commas or
newlines. /train replaces the model with the mean of its files; /input folds
its files into the running mean; /output returns, for each file, the Euclidean
distance of its vector to the model's mean.

    herd serve --worker 'python3 examples/mean-python/worker.py' --files-root examples/data
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "adapters", "python"))
import herd_worker  # noqa: E402

STATE_FILE = "mean.json"
_loaded = {}  # state_dir -> state; output state directories are immutable versions


def read_vector(path):
    with open(path) as f:
        text = f.read().replace(",", " ")
    try:
        vector = [float(x) for x in text.split()]
    except ValueError as e:
        raise ValueError("%s: not a list of numbers (%s)" % (os.path.basename(path), e))
    if not vector:
        raise ValueError("%s: empty file" % os.path.basename(path))
    return vector


def load(state_dir):
    path = os.path.join(state_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save(state_dir, state):
    with open(os.path.join(state_dir, STATE_FILE), "w") as f:
        json.dump(state, f)


def fold(state, files, req):
    for i, path in enumerate(files):
        vector = read_vector(path)
        if state is None:
            state = {"n": 0, "sum": [0.0] * len(vector)}
        if len(vector) != len(state["sum"]):
            raise ValueError("%s has %d numbers, the model has %d" % (os.path.basename(path), len(vector), len(state["sum"])))
        state["n"] += 1
        state["sum"] = [a + b for a, b in zip(state["sum"], vector)]
        req.progress((i + 1) / len(files))
    return state


def train(req):
    state = fold(None, req.files, req)
    save(req.state_dir, state)
    return {"samples": state["n"]}


def input(req):
    state = fold(load(req.state_dir), req.files, req)
    save(req.state_dir, state)
    return {"samples": state["n"]}


def output(req):
    state = _loaded.get(req.state_dir)
    if state is None:
        state = load(req.state_dir)
        if state is None:
            raise ValueError("model %r is not trained yet: POST /train first" % req.model)
        _loaded[req.state_dir] = state
    mean = [s / state["n"] for s in state["sum"]]
    distances = []
    for path in req.files:
        vector = read_vector(path)
        if len(vector) != len(mean):
            raise ValueError("%s has %d numbers, the model has %d" % (os.path.basename(path), len(vector), len(mean)))
        distances.append(math.sqrt(sum((a - b) ** 2 for a, b in zip(vector, mean))))
    return distances


if __name__ == "__main__":
    herd_worker.run(train=train, input=input, output=output)
