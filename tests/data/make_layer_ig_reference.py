#!/usr/bin/env python3
"""Writes layer_ig_reference.txt: layer attributions computed by Captum 0.7.0 at a hidden layer
of three small networks, the independent reference for rar::layer_integrated_gradients and
rar::layer_conductance (tests/attribution/test_layer_integrated_gradients.cpp).

Each network is written as head and tail, model(x) = tail(head(x)), and Captum is pointed at
the head module, so the layer output Captum attributes to is h = head(x):

  * mlp:      head = Linear(6, 10), Tanh;  tail = Linear(10, 8), ReLU, Linear(8, 4)
  * cnn:      head = Conv2d(1, 3, 3), ReLU, Conv2d(3, 4, 3);  tail = ReLU, MaxPool2d(2),
              Flatten, Linear(16, 3)
  * residual: head = stem Conv2d(2, 4, 3, padding 1), ReLU, then a residual block
              relu(z + conv2(tanh(conv1(z))));  tail = AvgPool2d(2), Flatten, Linear(36, 3)

For every network, quadrature rule (the five of Captum), step count (7, 32) and baseline (zeros,
and a per-sample baseline in input space) it stores LayerIntegratedGradients' attributions and
convergence delta, and LayerConductance's attributions (7 and 32 steps). The script also checks
independently that layer IG equals Captum's IntegratedGradients applied to the tail at
h = head(x) with baseline head(x'), the construction the C++ side uses.

Regenerate (from the repository root):

    mkdir -p /tmp/captum070 && git -C /work/.mirror/pytorch+captum/repo archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_layer_ig_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch; Captum is taken from
$CAPTUM_PATH, default /tmp/captum070.)

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

# Must precede everything: Captum builds its Riemann nodes and step sizes in the default dtype.
torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum.attr import IntegratedGradients, LayerConductance, LayerIntegratedGradients  # noqa: E402

from reference_writer import Writer  # noqa: E402  (this folder)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layer_ig_reference.txt")
METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]
STEPS = [7, 32]


class ResHead(nn.Module):
    """stem conv + ReLU, then one residual block; attribute names are the C++ twin's."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        z = torch.relu(self.stem(x))
        return torch.relu(z + self.conv2(torch.tanh(self.conv1(z))))


class Split(nn.Module):
    """model(x) = tail(head(x)); Captum's layer is `head`."""

    def __init__(self, head, tail):
        super().__init__()
        self.head = head
        self.tail = tail

    def forward(self, x):
        return self.tail(self.head(x))


def make_models():
    """name -> (model, input, baseline, target)."""
    specs = {}
    torch.manual_seed(21)
    mlp = Split(nn.Sequential(nn.Linear(6, 10), nn.Tanh()),
                nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 4)))
    specs["mlp"] = (mlp, torch.randn(4, 6), 0.5 * torch.randn(4, 6), [0, 3, 1, 2])

    torch.manual_seed(22)
    cnn = Split(nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 3)),
                nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3)))
    specs["cnn"] = (cnn, torch.randn(3, 1, 8, 8), 0.3 * torch.randn(3, 1, 8, 8), [2, 0, 1])

    torch.manual_seed(23)
    res = Split(ResHead(), nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(36, 3)))
    specs["residual"] = (res, torch.randn(3, 2, 6, 6), 0.3 * torch.randn(3, 2, 6, 6), [1, 2, 0])
    return specs


def main():
    w = Writer()
    checks = []
    for name, (model, x, base, target) in make_models().items():
        model.eval()
        target = torch.tensor(target, dtype=torch.long)
        w.put(f"{name}.input", x)
        w.put(f"{name}.baseline", base)
        w.put(f"{name}.target", target)
        for part in ("head", "tail"):
            for key, value in getattr(model, part).state_dict().items():
                w.put(f"{name}.{part}.{key}", value)
        with torch.no_grad():
            w.put(f"{name}.layer", model.head(x))
            w.put(f"{name}.output", model(x))

        lig = LayerIntegratedGradients(model, model.head)
        lc = LayerConductance(model, model.head)
        ig_tail = IntegratedGradients(model.tail)
        worst_own = 0.0
        for method in METHODS:
            for steps in STEPS:
                for tag, b in (("zero", None), ("base", base)):
                    key = f"{name}.lig.{method}.{steps}.{tag}"
                    a, d = lig.attribute(x, baselines=b, target=target, n_steps=steps,
                                         method=method, return_convergence_delta=True)
                    w.put(key, a)
                    w.put(key + ".delta", d)
                    # Independent: IG of the tail at h = head(x) from head(baseline).
                    with torch.no_grad():
                        h = model.head(x)
                        hb = model.head(torch.zeros_like(x) if b is None else b)
                    own = ig_tail.attribute(h, baselines=hb, target=target, n_steps=steps,
                                            method=method)
                    gap = (own - a).abs().max().item()
                    assert gap < 1e-12, (key, gap)
                    worst_own = max(worst_own, gap)
                    c = lc.attribute(x, baselines=b, target=target, n_steps=steps, method=method)
                    w.put(f"{name}.conductance.{method}.{steps}.{tag}", c)
        checks.append((f"{name}: max |LayerIG - IG(tail) at h|", worst_own))
        # Completeness of LayerIG at many steps (Gauss-Legendre): delta -> 0.
        _, d = lig.attribute(x, target=target, n_steps=200, return_convergence_delta=True)
        checks.append((f"{name}: max |delta|, 200 Gauss-Legendre steps", d.abs().max().item()))

    w.save(OUT, f"tests/data/make_layer_ig_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")
    for label, v in checks:
        print(f"{label:52s} {v:.3e}")
    print(f"wrote {len(w.lines)} tensors to {OUT}")


if __name__ == "__main__":
    main()
