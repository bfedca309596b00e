"""Choose the WDBC demo plan's DP-SGD settings (issue 11) with a numpy replica of fedward's trainer.

Not part of the product or of `npm test`: a quick, reproducible search run by hand,
`python3 test/bench/dp_settings.py [search|report]` (Debian: python3-numpy, python3-scipy).

What it replicates (docs: workers/train/dp-sgd.ts, src/core/privacy/dp-sgd.ts):
- the demo plan's model, 30 -> 8 (relu) -> 1 (sigmoid), glorot-uniform kernels, zero biases, BCE loss,
  features standardised with the plan's fixed means and population standard deviations;
- each site holds out 20% of its rows and trains on the rest; per step each training row is included
  independently with probability q (Poisson), its gradient clipped to C, Gaussian noise of std z*C added
  to the sum, which is divided by q*N (never the realised batch size); a fresh optimizer each round
  (sgd, momentum as torch.optim.SGD's heavy ball, or adam as tf.train.adam); the site uploads
  local - global, the coordinator takes the unweighted mean (FedAvg over equal-sized sites);
- the data: every seed deals the 569 rows of the three demo site files at random to 3 sites of about 190
  (2-site runs use the first two), then holds out 20% of each site; accuracy is the global model's on the
  union of the participating sites' held-out rows (about 76 for 2 sites, 114 for 3).
- epsilon: RDP of the Poisson-subsampled Gaussian at INTEGER orders only (accounting.ts's
  INTEGER_RDP_ORDERS: 2..64, 80, 96, 128, 256, 512, 1024; Mironov, Talwar, Zhang 2019, Sec. 3.3),
  composed over rounds * steps, converted as Balle et al. 2020, Thm. 21. z is the smallest meeting the
  target (bisection); the plan's z is rounded up.

Tuning seeds and reporting seeds differ; tuning on the same data is optimistic, so the browser's own
measurements are what count.
"""

import csv
import itertools
import json
import math
import os
import sys

import numpy as np
from scipy.special import expit

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DEMO = os.path.join(ROOT, "public", "demo")
DELTA = 1e-5
ORDERS = list(range(2, 65)) + [80, 96, 128, 256, 512, 1024]  # INTEGER_RDP_ORDERS of accounting.ts


# ----------------------------------------------------------------------------------------------- data
def load_demo():
    with open(os.path.join(DEMO, "wdbc-plan.json")) as f:
        plan = json.load(f)
    rows = []
    for k in (1, 2, 3):
        with open(os.path.join(DEMO, f"wdbc-site{k}.csv")) as f:
            rows += list(csv.DictReader(f))
    mean = np.array([ft["mean"] for ft in plan["features"]])
    std = np.array([ft["std"] for ft in plan["features"]])
    X = np.array([[float(r[ft["column"]]) for ft in plan["features"]] for r in rows])
    y = np.array([1.0 if r[plan["label"]["column"]] == plan["label"]["positive"] else 0.0 for r in rows])
    return (X - mean) / std, y


def split(X, y, n_sites, rng, holdout=0.2):
    """Deal the rows at random to 3 sites, keep the first n_sites; each holds out 20% of its rows."""
    parts = np.array_split(rng.permutation(len(y)), 3)[:n_sites]
    train, test = [], []
    for p in parts:
        cut = int(round(holdout * len(p)))
        test.append(p[:cut])
        train.append(p[cut:])
    M = max(len(t) for t in train)
    Xs = np.zeros((n_sites, M, X.shape[1]))
    ys = np.zeros((n_sites, M))
    valid = np.zeros((n_sites, M), bool)
    for k, t in enumerate(train):
        Xs[k, : len(t)], ys[k, : len(t)], valid[k, : len(t)] = X[t], y[t], True
    te = np.concatenate(test)
    return Xs, ys, valid, valid.sum(1), X[te], y[te]


# ----------------------------------------------------------------------------------------------- model
F, H = 30, 8
P = F * H + H + H + 1


def init(rng):  # glorot uniform kernels, zero biases (tf.js Dense defaults), weights in getWeights() order
    l1, l2 = math.sqrt(6 / (F + H)), math.sqrt(6 / (H + 1))
    return np.concatenate([rng.uniform(-l1, l1, F * H), np.zeros(H), rng.uniform(-l2, l2, H), [0.0]])


def unpack(w):
    W1 = w[..., : F * H].reshape(w.shape[:-1] + (F, H))
    return W1, w[..., F * H : F * H + H], w[..., F * H + H : F * H + 2 * H], w[..., F * H + 2 * H]


def forward(w, X):
    W1, b1, W2, b2 = unpack(w)
    a = np.einsum("...mf,...fh->...mh", X, W1) + b1[..., None, :]
    h = np.maximum(a, 0)
    return a, h, np.einsum("...mh,...h->...m", h, W2) + b2[..., None]


def clipped_sum(w, X, y, mask, C):
    """Per site: sum over the masked rows of each row's BCE gradient clipped to L2 norm C (ghost norms)."""
    _, _, W2, _ = unpack(w)
    a, h, z = forward(w, X)
    d = expit(z) - y
    dh = d[..., None] * W2[..., None, :] * (a > 0)
    # Goodfellow 2015: ||x (x) dh||^2 = ||x||^2 ||dh||^2, plus the biases and the output layer.
    sq = (X * X).sum(-1) * (dh * dh).sum(-1) + (dh * dh).sum(-1) + d * d * ((h * h).sum(-1) + 1)
    s = np.minimum(1.0, C / np.maximum(np.sqrt(sq), 1e-12)) * mask
    dhs, ds = dh * s[..., None], d * s
    gW1 = np.einsum("nmf,nmh->nfh", X, dhs).reshape(w.shape[0], -1)
    return np.concatenate([gW1, dhs.sum(1), np.einsum("nm,nmh->nh", ds, h), ds.sum(1)[:, None]], axis=-1)


def accuracy(w, X, y):
    return float(np.mean((forward(w[None], X[None])[2][0] >= 0) == (y > 0.5)))


class Optimizer:
    def __init__(self, name, lr, shape, momentum=0.9):
        self.name, self.lr, self.mom = name, lr, momentum
        self.m, self.v, self.t = np.zeros(shape), np.zeros(shape), 0

    def step(self, w, g):
        if self.name == "sgd":
            return w - self.lr * g
        if self.name == "momentum":  # torch.optim.SGD heavy ball: buf = mu*buf + g
            self.m = self.mom * self.m + g
            return w - self.lr * self.m
        self.t += 1  # adam, tf.train.adam defaults
        self.m = 0.9 * self.m + 0.1 * g
        self.v = 0.999 * self.v + 0.001 * g * g
        mh, vh = self.m / (1 - 0.9**self.t), self.v / (1 - 0.999**self.t)
        return w - self.lr * mh / (np.sqrt(vh) + 1e-7)


def federate(cfg, z, data, w0, rng, alone=False):
    """R rounds of S local DP-SGD steps at every site, FedAvg. alone=True: each site trains by itself."""
    Xs, ys, valid, sizes = data
    n = Xs.shape[0]
    q, C = cfg["q"], cfg["C"]
    g = np.repeat(w0[None], n, 0)
    for _ in range(cfg["R"]):
        w = g.copy()
        opt = Optimizer(cfg["opt"], cfg["lr"], w.shape)
        for _ in range(cfg["S"]):
            m = (rng.random(valid.shape) < q) & valid
            noise = rng.normal(0, z * C, w.shape)
            w = opt.step(w, (clipped_sum(w, Xs, ys, m, C) + noise) / (q * sizes)[:, None])
        g = w if alone else np.repeat(w.mean(0, keepdims=True), n, 0)
    return g


# ----------------------------------------------------------------------------------------------- accounting
def _logadd(x, y):
    lo, hi = min(x, y), max(x, y)
    return hi if lo == -math.inf else math.log1p(math.exp(lo - hi)) + hi


def _rdp_one(q, z, alpha):
    if q == 1:
        return alpha / (2 * z * z)
    lq, l1q, tv, la, lc = math.log(q), math.log1p(-q), 2 * z * z, -math.inf, 0.0
    for i in range(alpha + 1):
        if i > 0:
            lc += math.log((alpha - i + 1) / i)
        la = _logadd(la, lc + i * lq + (alpha - i) * l1q + (i * i - i) / tv)
    return la / (alpha - 1)


def epsilon(q, z, steps, delta=DELTA):
    best = math.inf
    for a in ORDERS:
        r = steps * _rdp_one(q, z, a)
        if delta * delta + math.expm1(-r) > 0:
            return 0.0
        best = min(best, r + math.log1p(-1 / a) - math.log(delta * a) / (a - 1))
    return max(0.0, best)


_zc = {}


def z_for(target, q, steps):
    key = (target, q, steps)
    if key not in _zc:
        lo, hi = 0.3, 1.0
        while epsilon(q, hi, steps) > target:
            lo, hi = hi, 2 * hi
        while hi / lo - 1 > 1e-6:
            mid = math.sqrt(lo * hi)
            lo, hi = (lo, mid) if epsilon(q, mid, steps) <= target else (mid, hi)
        _zc[key] = hi
    return _zc[key]


# ----------------------------------------------------------------------------------------------- runs
X, Y = load_demo()


def run(cfg, seed, n_sites, z, alone=False):
    rng = np.random.default_rng(seed)
    Xs, ys, valid, sizes, Xte, yte = split(X, Y, n_sites, rng)
    w0 = init(rng)
    g = federate(cfg, z, (Xs, ys, valid, sizes), w0, rng, alone)
    if alone:
        return float(np.mean([accuracy(g[k], Xte, yte) for k in range(n_sites)]))
    return accuracy(g[0], Xte, yte)


def grid():
    for q, (R, S), (opt, lr), C in itertools.product(
        (0.25, 0.5),
        ((2, 20), (3, 15), (3, 20), (4, 12), (5, 10), (5, 16), (10, 8)),
        (("sgd", 1.0), ("sgd", 2.0), ("sgd", 4.0), ("momentum", 0.2), ("momentum", 0.5), ("adam", 0.05), ("adam", 0.1)),
        (1.0,),
    ):
        yield dict(q=q, R=R, S=S, opt=opt, lr=lr, C=C)


TUNE = range(100, 110)
REPORT = range(0, 20)


def search(target=3.0):
    results = []
    for cfg in grid():
        z = z_for(target, cfg["q"], cfg["R"] * cfg["S"])
        a2 = [run(cfg, s, 2, z) for s in TUNE]
        a3 = [run(cfg, s, 3, z) for s in TUNE]
        score = min(np.mean(a2), np.mean(a3))
        results.append((score, cfg, z, np.mean(a2), np.mean(a3)))
        print(f"{score:.3f}  2:{np.mean(a2):.3f} 3:{np.mean(a3):.3f}  z={z:.3f} {cfg}", flush=True)
    results.sort(key=lambda r: -r[0])
    print("best:")
    for r in results[:10]:
        print(f"{r[0]:.3f}  2:{r[3]:.3f} 3:{r[4]:.3f}  z={r[2]:.3f} {r[1]}")


def report(cfg, z_plan):
    steps = cfg["R"] * cfg["S"]
    print(f"cfg {cfg}; plan z = {z_plan}: epsilon = {epsilon(cfg['q'], z_plan, steps):.4f} (delta {DELTA})")
    for target in (1.0, 3.0):
        z = z_plan if target == 3.0 else z_for(target, cfg["q"], steps)
        for n in (2, 3):
            fed = [run(cfg, s, n, z) for s in REPORT]
            alone = [run(cfg, s, n, z, alone=True) for s in REPORT]
            print(
                f"eps={target:g} z={z:.4f} sites={n}: federated {np.mean(fed):.3f} +- {np.std(fed, ddof=1):.3f} "
                f"(min {np.min(fed):.3f}); each alone {np.mean(alone):.3f} +- {np.std(alone, ddof=1):.3f}",
                flush=True,
            )
    plain = dict(cfg, C=1e9)  # the same steps with no clipping and no noise: what privacy costs here
    for n in (2, 3):
        fed = [run(plain, s, n, 0.0) for s in REPORT]
        print(f"no privacy sites={n}: federated {np.mean(fed):.3f} +- {np.std(fed, ddof=1):.3f}", flush=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "search"
    if what == "search":
        search(float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
    else:
        report(json.loads(sys.argv[2]), float(sys.argv[3]))
