"""Keystroke-dynamics anomaly detectors, served by herd: one model per user.

Each input file is a CSV of typing repetitions of one password, one row per
repetition, one column per timing feature (hold, down-down and up-down times
in seconds, as in the CMU benchmark); a header row is skipped. /train makes
the model the given repetitions; /input adds repetitions to it; /output
returns one anomaly score per row of its files (higher: less like the user).

The detectors are those of Killourhy & Maxion, "Comparing Anomaly-Detection
Algorithms for Keystroke Dynamics" (DSN 2009), plus one of ours (knn-log):

    herd serve --worker '/usr/bin/python3 examples/keystroke/worker.py --detector manhattan-scaled'

Needs numpy (Debian: python3-numpy, for /usr/bin/python3).
"""

import argparse
import csv
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "adapters", "python"))
import herd_worker  # noqa: E402

STATE_FILE = "repetitions.npy"


def read_rows(paths, uris):
    """The numeric rows of the CSV files, as one matrix."""
    rows, width = [], None
    for path, uri in zip(paths, uris):
        with open(path, newline="") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row:
                    continue
                try:
                    values = [float(x) for x in row]
                except ValueError:
                    if n == 1:
                        continue  # a header
                    raise ValueError("%s line %d: not a row of numbers" % (uri, n))
                if width is None:
                    width = len(values)
                elif len(values) != width:
                    raise ValueError("%s line %d: %d values, earlier rows have %d" % (uri, n, len(values), width))
                rows.append(values)
    if not rows:
        raise ValueError("no repetitions in %s" % ", ".join(uris))
    return np.array(rows)


# Each detector is (fit, score): fit(training matrix) -> model, score(model,
# test matrix) -> one anomaly score per row.


def _mean_fit(train):
    return train.mean(axis=0)


def _euclidean(mean, x):
    return np.sqrt(((x - mean) ** 2).sum(axis=1))


def _manhattan(mean, x):
    return np.abs(x - mean).sum(axis=1)


def _scaled_fit(train):
    mean = train.mean(axis=0)
    return mean, _nonzero(np.abs(train - mean).mean(axis=0))


def _scaled(model, x):
    mean, mad = model
    return (np.abs(x - mean) / mad).sum(axis=1)


def _nonzero(scale):
    # A feature that never varied in training must not divide by zero.
    return np.where(scale > 0, scale, 1e-9)


def _mahalanobis_fit(train):
    # The features are collinear (down-down = hold + up-down), so the
    # covariance is singular: the pseudo-inverse, as the paper's results need.
    return train.mean(axis=0), np.linalg.pinv(np.cov(train.T))


def _mahalanobis(model, x):
    mean, inv = model
    d = x - mean
    return np.einsum("ij,jk,ik->i", d, inv, d)


def _nn_mahalanobis_fit(train):
    return train, np.linalg.pinv(np.cov(train.T))


def _nn_mahalanobis(model, x):
    train, inv = model
    scores = np.empty(len(x))
    for i, row in enumerate(x):  # row by row: bounded memory for long files
        d = train - row
        scores[i] = np.einsum("ij,jk,ik->i", d, inv, d).min()
    return scores


def _zscore_fit(train):
    return train.mean(axis=0), _nonzero(train.std(axis=0, ddof=1))


def _zscore(model, x):
    mean, sd = model
    return (np.abs((x - mean) / sd) > 1.96).sum(axis=1).astype(float)


# knn-log, ours: timings are closer to log-normal than normal, so features
# that are always positive (hold and down-down times) are compared in log
# space; the score is the mean scaled-Manhattan distance to the 5 nearest
# training repetitions, which follows a user whose typing has several modes
# instead of one mean.
K_NEAREST = 5


def _logged(x, positive):
    y = x.copy()
    y[:, positive] = np.log(np.maximum(x[:, positive], 1e-4))
    return y


def _knn_log_fit(train):
    positive = (train > 0).all(axis=0)
    t = _logged(train, positive)
    return t, _nonzero(np.abs(t - t.mean(axis=0)).mean(axis=0)), positive


def _knn_log(model, x):
    train, mad, positive = model
    x = _logged(x, positive)
    k = min(K_NEAREST, len(train))
    scores = np.empty(len(x))
    for i, row in enumerate(x):
        d = (np.abs(train - row) / mad).sum(axis=1)
        scores[i] = np.partition(d, k - 1)[:k].mean()
    return scores


DETECTORS = {
    "euclidean": (_mean_fit, _euclidean),
    "manhattan": (_mean_fit, _manhattan),
    "manhattan-scaled": (_scaled_fit, _scaled),
    "mahalanobis": (_mahalanobis_fit, _mahalanobis),
    "nn-mahalanobis": (_nn_mahalanobis_fit, _nn_mahalanobis),
    "zscore": (_zscore_fit, _zscore),
    "knn-log": (_knn_log_fit, _knn_log),
}

_fitted = {}  # state_dir -> fitted model; output state directories never change


def main():
    parser = argparse.ArgumentParser(description="keystroke-dynamics detectors for herd")
    parser.add_argument("--detector", default="knn-log", choices=sorted(DETECTORS))
    args = parser.parse_args()
    fit, score = DETECTORS[args.detector]

    def load(state_dir):
        path = os.path.join(state_dir, STATE_FILE)
        return np.load(path) if os.path.exists(path) else None

    def save(state_dir, train):
        np.save(os.path.join(state_dir, STATE_FILE), train)

    def train(req):
        reps = read_rows(req.files, req.uris)
        save(req.state_dir, reps)
        return {"repetitions": len(reps), "features": reps.shape[1]}

    def add(req):
        reps = read_rows(req.files, req.uris)
        old = load(req.state_dir)
        if old is not None:
            if old.shape[1] != reps.shape[1]:
                raise ValueError("%d features per row; the model has %d" % (reps.shape[1], old.shape[1]))
            reps = np.vstack([old, reps])
        save(req.state_dir, reps)
        return {"repetitions": len(reps), "features": reps.shape[1]}

    def output(req):
        model = _fitted.get(req.state_dir)
        if model is None:
            reps = load(req.state_dir)
            if reps is None:
                raise ValueError("model %r is not trained yet: POST /train with the user's repetitions first" % req.model)
            if len(reps) < 2:
                raise ValueError("model %r has %d repetition; at least 2 are needed" % (req.model, len(reps)))
            model = (fit(reps), reps.shape[1])
            _fitted[req.state_dir] = model
        fitted, width = model
        x = read_rows(req.files, req.uris)
        if x.shape[1] != width:
            raise ValueError("%d features per row; the model has %d" % (x.shape[1], width))
        return [float(s) for s in score(fitted, x)]

    herd_worker.run(train=train, input=add, output=output)


if __name__ == "__main__":
    main()
