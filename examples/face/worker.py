"""Face identification served by herd: which enrolled person is in a photo.

/train takes the gallery: face images (binary PGM, as in the ORL / AT&T
set), each labelled by the name of the directory its URI names
("s1/3.pgm" is person "s1"). /output takes face images and returns, for each,
the index of the most likely person in the sorted list of people that
/train reported.

Method: local binary patterns (uniform, radius 1, 8 neighbours) histogrammed
over a 4x4 grid (Ahonen et al. 2006), projected by PCA then Fisher's linear
discriminant (Belhumeur et al. 1997) learnt on the gallery, and a
cosine nearest neighbour in that space.

    herd serve --worker '/usr/bin/python3 examples/face/worker.py' --files-root ../shared/data/att_faces

Needs numpy (Debian: python3-numpy, for /usr/bin/python3).
"""

import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "adapters", "python"))
import herd_worker  # noqa: E402

STATE_FILE = "fisher-lbp.npz"
GRID = (4, 4)


def read_pgm(path, uri):
    with open(path, "rb") as f:
        data = f.read()
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if not m:
        raise ValueError("%s: not a binary PGM image (P5)" % uri)
    w, h, maxval = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if maxval > 255 or len(data) < m.end() + w * h:
        raise ValueError("%s: truncated or 16-bit PGM; 8-bit P5 expected" % uri)
    return np.frombuffer(data, dtype=np.uint8, count=w * h, offset=m.end()).reshape(h, w).astype(np.int16)


def _uniform_patterns():
    # 8-bit patterns with at most two 0/1 transitions get a bin each (58);
    # all others share one.
    table = np.zeros(256, dtype=np.int32)
    n = 0
    for v in range(256):
        bits = [(v >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[v] = n
            n += 1
        else:
            table[v] = -1
    table[table == -1] = n
    return table, n + 1


UNIFORM, BINS = _uniform_patterns()


def lbp_histograms(img):
    c = img[1:-1, 1:-1]
    neighbours = [img[:-2, :-2], img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:],
                  img[2:, 2:], img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2]]
    code = np.zeros(c.shape, dtype=np.int32)
    for k, n in enumerate(neighbours):
        code |= (n >= c).astype(np.int32) << k
    code = UNIFORM[code]
    h, w = code.shape
    gy, gx = GRID
    feats = []
    for i in range(gy):
        for j in range(gx):
            block = code[i * h // gy:(i + 1) * h // gy, j * w // gx:(j + 1) * w // gx]
            hist = np.bincount(block.ravel(), minlength=BINS).astype(float)
            feats.append(hist / hist.sum())
    return np.concatenate(feats)


def label_of(uri):
    parts = [p for p in re.split(r"[/\\]", uri) if p]
    if len(parts) < 2:
        raise ValueError("%s: name the person by a directory, e.g. alice/1.pgm" % uri)
    return parts[-2]


def fit(X, labels):
    """PCA to n - c dimensions, then Fisher's discriminant to c - 1."""
    people = sorted(set(labels))
    c, n = len(people), len(X)
    if c < 2:
        raise ValueError("the gallery needs at least two people")
    if n <= c:
        raise ValueError("the gallery needs more images than people (%d images, %d people)" % (n, c))
    y = np.array([people.index(l) for l in labels])
    mean = X.mean(axis=0)
    _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
    pca = vt[: n - c]
    z = (X - mean) @ pca.T
    overall = z.mean(axis=0)
    within = np.zeros((z.shape[1], z.shape[1]))
    between = np.zeros_like(within)
    for k in range(c):
        zk = z[y == k]
        mk = zk.mean(axis=0)
        within += (zk - mk).T @ (zk - mk)
        between += len(zk) * np.outer(mk - overall, mk - overall)
    values, vectors = np.linalg.eig(np.linalg.lstsq(within, between, rcond=None)[0])
    order = np.argsort(-values.real)[: c - 1]
    projection = pca.T @ vectors[:, order].real
    gallery = _normalise((X - mean) @ projection)
    return {"mean": mean, "projection": projection, "gallery": gallery, "y": y, "people": np.array(people)}


def _normalise(v):
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def predict(model, X):
    q = _normalise((X - model["mean"]) @ model["projection"])
    return model["y"][(q @ model["gallery"].T).argmax(axis=1)]


_models = {}  # state_dir -> model; output state directories never change


def train(req):
    X = np.array([lbp_histograms(read_pgm(p, u)) for p, u in zip(req.files, req.uris)])
    labels = [label_of(u) for u in req.uris]
    model = fit(X, labels)
    np.savez(os.path.join(req.state_dir, STATE_FILE), **model)
    return {"people": model["people"].tolist(), "images": len(X)}


def output(req):
    model = _models.get(req.state_dir)
    if model is None:
        path = os.path.join(req.state_dir, STATE_FILE)
        if not os.path.exists(path):
            raise ValueError("model %r is not trained yet: POST /train with the gallery first" % req.model)
        with np.load(path) as f:
            model = {k: f[k] for k in f.files}
        _models[req.state_dir] = model
    X = np.array([lbp_histograms(read_pgm(p, u)) for p, u in zip(req.files, req.uris)])
    return [int(i) for i in predict(model, X)]


def add(req):
    raise ValueError("send the whole gallery to /train: the discriminant is learnt from all of it at once")


if __name__ == "__main__":
    herd_worker.run(train=train, input=add, output=output)
