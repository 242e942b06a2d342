#!/usr/bin/env python3
"""Writes lens_reference.txt: the references of the LENS tests (tests/metrics/test_lens.cpp).

LENS (Kamath, Mittal, Deshpande, Balasubramanian, "Rethinking Robustness of Model
Attributions", AAAI 2024; code ksandeshk/LENS, MNIST/eval_with_lens_attribution_attack.py)
measures, for the features S_a and S_b that two maps select,

    intersection = |S_a & S_b| / k
    recall       = |N_w(S_a) & S_b| / k      ("LENS-recall": sum_fo_p in the LENS code)
    precision    = |S_a & N_w(S_b)| / k      ("LENS-prec": sum_o_fp)

with N_w(S) the pixels within Chebyshev distance w of S on the image grid, and S either the
top-k (ties: the lower flat index first) or the top-k-div: greedily the largest pixel not within
w of an earlier pick. This file writes both out in plain numpy loops, independent of rar's C++.
(The LENS code works on flat indices, so its 3x3 window wraps across rows at the image border
and always drops pixel 0, and its top-k-div looks at the 600 largest pixels only; this
reference, like rar, uses the grid and every pixel.)

Regenerate (from the repository root) with Debian's interpreter:

    /usr/bin/python3 tests/data/make_lens_reference.py

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os

import numpy as np

from reference_writer import Writer

HERE = os.path.dirname(os.path.abspath(__file__))


def order(x):
    """Flat indices by value, largest first; equal values: the lower index first."""
    flat = x.reshape(-1)
    return np.lexsort((np.arange(flat.size), -flat))


def select(x, k, w, diverse):
    h, wd = x.shape
    picked = np.zeros(h * wd, dtype=bool)
    if not diverse:
        picked[order(x)[:k]] = True
        return picked.reshape(h, wd)
    blocked = np.zeros((h, wd), dtype=bool)
    count = 0
    for i in order(x):
        if count == k:
            break
        r, c = divmod(int(i), wd)
        if blocked[r, c]:
            continue
        picked[i] = True
        count += 1
        blocked[max(0, r - w):r + w + 1, max(0, c - w):c + w + 1] = True
    return picked.reshape(h, wd)


def near(s, w):
    h, wd = s.shape
    out = np.zeros_like(s)
    for r in range(h):
        for c in range(wd):
            if s[r, c]:
                out[max(0, r - w):r + w + 1, max(0, c - w):c + w + 1] = True
    return out


def lens(a, b, k, w, diverse):
    rows = []
    for x, y in zip(a, b):
        sa, sb = select(x, k, w, diverse), select(y, k, w, diverse)
        rows.append([(sa & sb).sum() / k, (near(sa, w) & sb).sum() / k, (sa & near(sb, w)).sum() / k])
    return np.array(rows)


def main():
    rng = np.random.default_rng(20261207)
    out = Writer()
    # Maps like MNIST saliency maps: mostly zero background (ties), a blob, noise; the second
    # map is the first shifted by a pixel or two, plus noise, as an attack's small local moves.
    n, h, w = 6, 9, 11
    a = np.zeros((n, h, w))
    for s in range(n):
        r0, c0 = rng.integers(2, h - 2), rng.integers(2, w - 2)
        a[s, r0 - 2:r0 + 3, c0 - 2:c0 + 3] = rng.random((5, 5)) + 0.5
        a[s] += (rng.random((h, w)) < 0.25) * rng.random((h, w)) * 0.6
    b = np.roll(a, shift=(1, -1), axis=(1, 2)) * 0.9 + (rng.random((n, h, w)) < 0.2) * 0.4
    b[2] = a[2]  # one unchanged sample: everything is 1
    out.put("lens.a", a)
    out.put("lens.b", b)
    for k in (5, 12, 30):
        for win in (0, 1, 2):
            for diverse in (False, True):
                out.put(f"lens.k{k}.w{win}.{'div' if diverse else 'top'}", lens(a, b, k, win, diverse))
    out.save(os.path.join(HERE, "lens_reference.txt"), "tests/data/make_lens_reference.py")


if __name__ == "__main__":
    main()
