#!/usr/bin/env python3
"""Writes lime_reference.txt: the coalitions Captum 0.7.0's `Lime` and `KernelShap` draw, the
scores and weights of their perturbed inputs, and the surrogates' coefficients fitted to them
in float64, the reference tests/attribution/test_lime.cpp compares rar's LIME and KernelSHAP
with (1e-9 relative) on the same coalitions.

Regenerate (from the repository root):

    mkdir -p /tmp/captum070 && git -C /work/.mirror/pytorch+captum/repo archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_lime_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch and numpy; Captum is taken from
$CAPTUM_PATH, default /tmp/captum070. scikit-learn is not needed.)

How the reference is made. Captum draws the coalitions from torch's global generator and fits
its interpretable model with scikit-learn (`SkLearnLasso(alpha=0.01)` for `Lime`,
`SkLearnLinearRegression` for `KernelShap`) on float32 copies of the data, stopping Lasso at
scikit-learn's tolerance. So this script runs Captum's own `attribute` with an interpretable
model that records what Captum hands it (coalitions, scores, weights per sample), checks that
the float64 recomputation below reproduces those float32 values (same perturbed inputs, same
kernel), and fits the models in float64 to round-off with scikit-learn's definitions:
  * linear regression: weighted centering, rows scaled by sqrt(w), minimum-norm least squares
    (torch.linalg.lstsq, gelsd, rcond 1e-10), as LinearRegression(sample_weight=w);
  * ridge: the same centering, (A^T A + alpha I) beta = A^T b, as Ridge(alpha, sample_weight=w);
  * lasso: (1 / (2 sum w)) sum w r^2 + alpha |beta|_1 with a free intercept, as
    Lasso(alpha, sample_weight=w) defines it, by coordinate descent followed by the exact
    solution of its active set; the optimality (KKT) conditions are asserted. Written for
    Captum's alpha = 0.01 (`.coef.lasso`) and for alpha = 1e-4 (`.coef.lasso_small`).

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import math
import os
import sys

sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum._utils.models.model import Model  # noqa: E402
from captum.attr import KernelShap, Lime  # noqa: E402
from captum.attr._core.lime import get_exp_kernel_similarity_function  # noqa: E402

from make_residual_reference import Residual  # noqa: E402  (this folder; the class only)
from reference_writer import Writer, read_reference  # noqa: E402  (this folder)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "lime_reference.txt")
RANK_TOLERANCE = 1e-10
# Captum's alpha = 0.01 sets every coefficient of the residual network to 0; a smaller alpha
# gives Lasso fits with a non-trivial active set (also when underdetermined, 72 features).
LASSO_SMALL = 1e-4


class Recorder(Model):
    """An interpretable model that keeps what Captum fits it on, one entry per sample."""

    def __init__(self):
        self.fits = []

    def fit(self, train_data, **kwargs):
        batches = list(train_data)
        assert len(batches) == 1
        x, y, w = batches[0]
        self.fits.append((x.clone(), y.clone(), w.clone()))

    def representation(self):
        return torch.zeros(1, self.fits[-1][0].shape[1])

    def __call__(self, x):
        raise NotImplementedError


def centered(z, y, w):
    wsum = w.sum()
    zbar = (w[:, None] * z).sum(0) / wsum
    ybar = (w * y).sum() / wsum
    sw = w.sqrt()
    return sw[:, None] * (z - zbar), sw * (y - ybar), wsum


def fit_linear_regression(z, y, w):
    a, b, _ = centered(z, y, w)
    return torch.linalg.lstsq(a, b[:, None], rcond=RANK_TOLERANCE, driver="gelsd").solution[:, 0]


def fit_ridge(z, y, w, alpha):
    a, b, _ = centered(z, y, w)
    g = a.T @ a + alpha * torch.eye(a.shape[1])
    return torch.linalg.solve(g, a.T @ b)


def fit_lasso(z, y, w, alpha):
    a, b, wsum = centered(z, y, w)
    a = (a / math.sqrt(wsum)).numpy()
    b = (b / math.sqrt(wsum)).numpy()
    g, c = a.T @ a, a.T @ b
    m = g.shape[0]
    beta = np.zeros(m)
    for _ in range(200000):
        change = largest = 0.0
        for j in range(m):
            if g[j, j] <= 0:
                continue
            rho = c[j] - g[j] @ beta + g[j, j] * beta[j]
            new = math.copysign(max(abs(rho) - alpha, 0.0), rho) / g[j, j]
            change = max(change, abs(new - beta[j]))
            largest = max(largest, abs(new))
            beta[j] = new
        if change <= 1e-13 * max(largest, 1e-300):
            break
    active = np.nonzero(beta)[0]
    signs = np.sign(beta[active])
    exact = np.zeros(m)
    if len(active):
        exact[active] = np.linalg.solve(g[np.ix_(active, active)], c[active] - alpha * signs)
        assert np.all(np.sign(exact[active]) == signs), "lasso: active set not settled"
    grad = c - g @ exact
    inactive = np.setdiff1d(np.arange(m), active)
    scale = max(np.abs(c).max(), alpha)
    assert np.all(np.abs(grad[inactive]) <= alpha + 1e-9 * scale), "lasso: KKT fails off the set"
    assert np.allclose(grad[active], alpha * signs, rtol=0, atol=1e-9 * scale), "lasso: KKT"
    return torch.from_numpy(exact)


def perturbed_rows(x, b, mask, z):
    """Rows where(z[mask], x, b) for one sample x [1, ...] and coalitions z [S, M]."""
    on = z.bool()[:, mask.reshape(-1)]
    rows = torch.where(on, x.reshape(1, -1), b.reshape(1, -1))
    return rows.reshape(z.shape[0], *x.shape[1:])


def lime_distance(x, rows, mode):
    xf, rf = x.reshape(1, -1), rows.reshape(rows.shape[0], -1)
    if mode == "cosine":
        cos = (xf * rf).sum(1) / (xf.norm(dim=1).clamp_min(1e-8) * rf.norm(dim=1).clamp_min(1e-8))
        return 1 - cos
    return (xf - rf).norm(dim=1)


def run_case(w, checks, name, model, x, baseline, target, mask, method, n_samples, seed,
             distance="cosine", kernel_width=1.0, ridge_alpha=1.0):
    """Runs Captum, recomputes its data in float64 and writes the case's reference."""
    recorder = Recorder()
    if method == "lime":
        explainer = Lime(model, interpretable_model=recorder,
                         similarity_func=get_exp_kernel_similarity_function(distance, kernel_width))
    else:
        explainer = KernelShap(model)
        explainer.interpretable_model = recorder
    torch.manual_seed(seed)
    explainer.attribute(x, baselines=baseline, target=target, feature_mask=mask,
                        n_samples=n_samples, perturbations_per_eval=4, return_input_shape=False)
    n = x.shape[0]
    assert len(recorder.fits) == n
    m = recorder.fits[0][0].shape[1]
    if mask is None:
        full_mask = torch.arange(x[0].numel()).reshape(1, *x.shape[1:]).expand_as(x)
    else:
        full_mask = (mask - mask.min()).expand_as(x)
    base = torch.zeros_like(x) + (baseline if baseline is not None else 0.0)
    zs, ys, ws = [], [], []
    coefs = {"lasso": [], "lasso_small": [], "ridge": [], "linear_regression": []}
    worst_y = worst_w = 0.0
    for i in range(n):
        z32, y32, w32 = recorder.fits[i]
        z = z32.to(torch.float64)
        rows = perturbed_rows(x[i:i + 1], base[i:i + 1], full_mask[i], z)
        with torch.no_grad():
            y = model(rows)[:, target[i]]
        if method == "lime":
            d = lime_distance(x[i:i + 1], rows, distance)
            wt = torch.exp(-d ** 2 / (2 * kernel_width ** 2))
        else:
            on = z.sum(1)
            wt = torch.where((on == 0) | (on == m), torch.tensor(1e6), torch.tensor(1.0))
        worst_y = max(worst_y, ((y - y32.double()).abs() / y.abs().clamp_min(1)).max().item())
        worst_w = max(worst_w, ((wt - w32.double()).abs() / wt).max().item())
        zs.append(z)
        ys.append(y)
        ws.append(wt)
        coefs["linear_regression"].append(fit_linear_regression(z, y, wt))
        if method == "lime":
            coefs["lasso"].append(fit_lasso(z, y, wt, 0.01))
            coefs["lasso_small"].append(fit_lasso(z, y, wt, LASSO_SMALL))
            coefs["ridge"].append(fit_ridge(z, y, wt, ridge_alpha))
    assert worst_y < 1e-5 and worst_w < 1e-5, (name, worst_y, worst_w)
    checks.append((f"{name}: Captum's float32 scores / weights vs float64", worst_y, worst_w))
    w.put(f"{name}.coalitions", torch.stack(zs))
    w.put(f"{name}.scores", torch.stack(ys))
    w.put(f"{name}.weights", torch.stack(ws))
    flat_mask = full_mask.reshape(n, -1)
    for kind, values in coefs.items():
        if not values:
            continue
        c = torch.stack(values)
        w.put(f"{name}.coef.{kind}", c)
        w.put(f"{name}.attr.{kind}", c.gather(1, flat_mask).reshape(x.shape))


def main():
    w = Writer()
    checks = []

    # The residual network of make_residual_reference.py with its committed weights and data.
    ref = read_reference(os.path.join(HERE, "residual_reference.txt"))
    res = Residual()
    res.load_state_dict({k[len("residual."):]: v for k, v in ref.items()
                         if k[len("residual."):] in res.state_dict()})
    res.eval()
    x, base = ref["residual.input"], ref["residual.baseline"]
    target = ref["residual.target"].long().tolist()
    # 2x2 superpixels per channel: 18 features, shared by the batch.
    h = torch.arange(6) // 2
    blocks = (torch.arange(2).view(2, 1, 1) * 9 + h.view(1, 6, 1) * 3 + h.view(1, 1, 6))
    res_mask = blocks.view(1, 2, 6, 6)
    w.put("res.mask", res_mask)

    run_case(w, checks, "res.lime.mask", res, x, base, target, res_mask, "lime", 40, 11)
    run_case(w, checks, "res.lime.default", res, x, 0.1, target, None, "lime", 25, 12)
    run_case(w, checks, "res.kernel_shap.mask", res, x, base, target, res_mask, "kernel_shap", 60,
             13)
    run_case(w, checks, "res.kernel_shap.default", res, x, None, target, None, "kernel_shap", 25,
             14)

    # An MLP with one feature mask per sample, LIME on the Euclidean distance.
    torch.manual_seed(5)
    mlp = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 4))
    mlp.eval()
    for k, v in mlp.state_dict().items():
        w.put(f"mlp.{k}", v)
    xm = torch.randn(3, 6)
    bm = 0.3 * torch.randn(3, 6)
    tm = [2, 0, 3]
    mm = torch.tensor([[0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 4, 0], [3, 3, 3, 0, 1, 2]])
    w.put("mlp.input", xm)
    w.put("mlp.baseline", bm)
    w.put("mlp.target", torch.tensor(tm))
    w.put("mlp.mask", mm)
    run_case(w, checks, "mlp.lime.euclidean", mlp, xm, bm, tm, mm, "lime", 30, 21,
             distance="euclidean", kernel_width=2.0, ridge_alpha=0.5)
    run_case(w, checks, "mlp.kernel_shap", mlp, xm, bm, tm, mm, "kernel_shap", 30, 22)

    w.save(OUT, f"tests/data/make_lime_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")
    for label, *vals in checks:
        print(f"{label:64s} " + " ".join(f"{v:.2e}" for v in vals))
    print(f"wrote {len(w.lines)} tensors to {OUT}")


if __name__ == "__main__":
    main()
