#!/usr/bin/env python3
"""Writes captum_reference.txt: attributions computed by Captum 0.7.0, the independent
reference the C++ attribution tests compare against (1e-9 relative).

Regenerate (from the repository root):

    mkdir -p /tmp/captum070 && git -C /work/.mirror/pytorch+captum/repo archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch; Captum is taken from
$CAPTUM_PATH, default /tmp/captum070. `git archive` may print an "invalid object" error
about a docs/ blob missing from the mirror; the captum/ tree is still complete.)

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

# Must precede everything: Captum builds its Riemann nodes with torch.linspace and its step
# sizes with torch.tensor(list) in the *default* dtype, so float32 here would round them.
torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum.attr import DeepLift, InputXGradient, IntegratedGradients, Saliency  # noqa: E402

from reference_writer import Writer  # noqa: E402  (this folder)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "captum_reference.txt")
METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]
STEPS = [7, 40]


def randomize_bn(model, seed):
    # Freshly initialised BN in eval mode is the identity; random statistics make the
    # C++ side prove it folds mean/var/affine correctly.
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.5 * torch.randn(c, generator=g))
            m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            m.weight.data.copy_(1.0 + 0.3 * torch.randn(c, generator=g))
            m.bias.data.copy_(0.3 * torch.randn(c, generator=g))


def make_models():
    """name -> (model, input, baseline, target). Every activation is its own module
    instance because Captum's DeepLift stores per-module state and rejects reuse."""
    specs = {}

    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.Sigmoid(),
                        nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 4))
    specs["mlp"] = (mlp, torch.randn(4, 6), 0.5 * torch.randn(4, 6), [0, 3, 1, 2])

    torch.manual_seed(2)
    mlp2 = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.ELU(),
                         nn.Linear(8, 6), nn.Softplus(), nn.Linear(6, 3))
    specs["mlp2"] = (mlp2, torch.randn(4, 6), 0.5 * torch.randn(4, 6), [2, 0, 1, 2])

    # Two max-pools on purpose (the rule mixes the input and reference halves). Caveat: with
    # a hooked activation right before each pool, Captum's max-pool rule has NO effect here:
    # the activation's backward hook captures its output gradient before the pool's hook
    # rewrites it, and its rescale rule ignores the incoming gradient. Net result: rescale
    # activations + the plain max-pool gradient. `cnn_pool` below exercises the real rule.
    torch.manual_seed(3)
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 3))
    specs["cnn"] = (cnn, torch.rand(3, 1, 10, 10), 0.3 * torch.rand(3, 1, 10, 10), [1, 0, 2])

    torch.manual_seed(4)
    cnn1d = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(3, 4, 2),
                          nn.Tanh(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(12, 3))
    specs["cnn1d"] = (cnn1d, torch.randn(3, 2, 16), 0.3 * torch.randn(3, 2, 16), [0, 2, 1])

    # Pools sandwiched between linear layers, so Captum's max-pool rule is what acts.
    torch.manual_seed(6)
    cnn_pool = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 4), nn.Tanh(),
                             nn.Linear(4, 3))
    specs["cnn_pool"] = (cnn_pool, torch.rand(3, 1, 10, 10), 0.3 * torch.rand(3, 1, 10, 10),
                         [2, 0, 1])

    torch.manual_seed(5)
    cnn_bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ELU(), nn.AvgPool2d(2),
                           nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, 3))
    randomize_bn(cnn_bn, 55)
    specs["cnn_bn"] = (cnn_bn, torch.randn(3, 1, 10, 10), 0.3 * torch.randn(3, 1, 10, 10),
                       [2, 1, 0])

    out = {}
    for name, (model, x, b, t) in specs.items():
        model.eval()
        out[name] = (model, x, b, torch.tensor(t, dtype=torch.long))
    return out


def main():
    w = Writer()
    checks = []  # (label, max |delta|) printed at the end for a human eye
    for name, (model, x, base, target) in make_models().items():
        w.put(f"{name}.input", x)
        w.put(f"{name}.baseline", base)
        w.put(f"{name}.target", target)
        for key, value in model.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                w.put(f"{name}.{key}", value)

        ig = IntegratedGradients(model)
        for method in METHODS:
            for n in STEPS:
                for tag, b in (("zero", None), ("base", base)):
                    a, d = ig.attribute(x.clone(), baselines=b, target=target, n_steps=n,
                                        method=method, return_convergence_delta=True)
                    w.put(f"{name}.ig.{method}.{n}.{tag}", a)
                    w.put(f"{name}.ig.{method}.{n}.{tag}.delta", d)
                    if method == "gausslegendre" and n == 40:
                        checks.append((f"{name} IG gl40 {tag} |delta|", d.abs().max().item()))

        if name in ("mlp", "cnn"):
            # A non-model forward: exercises wrapping of the model in a callable.
            ig_ls = IntegratedGradients(lambda inp, m=model: torch.log_softmax(m(inp), 1))
            a, d = ig_ls.attribute(x.clone(), baselines=base, target=target, n_steps=20,
                                   method="gausslegendre", return_convergence_delta=True)
            w.put(f"{name}.ig_log_softmax", a)
            w.put(f"{name}.ig_log_softmax.delta", d)

        sal = Saliency(model)
        w.put(f"{name}.saliency", sal.attribute(x.clone(), target=target, abs=False))
        w.put(f"{name}.saliency_abs", sal.attribute(x.clone(), target=target, abs=True))
        w.put(f"{name}.input_x_gradient", InputXGradient(model).attribute(x.clone(), target=target))

        dl = DeepLift(model)
        for tag, b in (("zero", None), ("base", base)):
            a, d = dl.attribute(x.clone(), baselines=b, target=target,
                                return_convergence_delta=True)
            # The plain call must agree with the one that also returns delta.
            assert torch.equal(a, dl.attribute(x.clone(), baselines=b, target=target))
            w.put(f"{name}.deeplift.{tag}", a)
            w.put(f"{name}.deeplift.{tag}.delta", d)
            checks.append((f"{name} DeepLift {tag} |delta|", d.abs().max().item()))

    w.save(OUT, f"tests/data/make_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")

    for label, v in checks:
        print(f"{label:36s} {v:.3e}")
    print(f"wrote {len(w.lines)} tensors to {OUT}")


if __name__ == "__main__":
    main()
