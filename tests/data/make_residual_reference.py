#!/usr/bin/env python3
"""Writes residual_reference.txt: DeepLIFT, guided backprop, deconvolution and saliency
computed by Captum 0.7.0 on a small residual network (residual add, concatenation, average
pool, a mix of activations), plus the outputs and input gradients of the same network with
every ReLU/LeakyReLU replaced by a softplus surrogate. The C++ tests compare against it.

Regenerate (from the repository root):

    mkdir -p /tmp/captum070 && git -C /work/.mirror/pytorch+captum/repo archive refs/tags/v0.7.0 captum | tar -x -C /tmp/captum070
    PYTHONPATH=/tmp/captum070 /usr/bin/python3 tests/data/make_residual_reference.py

(/usr/bin/python3 is Debian's interpreter with python3-torch; Captum is taken from
$CAPTUM_PATH, default /tmp/captum070. `git archive` may print an "invalid object" error
about a docs/ blob missing from the mirror; the captum/ tree is still complete.)

Captum semantics this data pins down (v0.7.0):
  * GuidedBackprop / Deconvolution hook only modules whose type is nn.ReLU (isinstance), here
    stem_act and add_act. LeakyReLU, ELU and the rest keep their ordinary gradients.
    GuidedBackprop replaces the ReLU's input gradient by relu(ordinary input gradient);
    Deconvolution replaces it by relu(output gradient), dropping the ReLU's own mask.
  * DeepLift applies the rescale rule to ReLU, LeakyReLU, ELU, Tanh, Softplus and Sigmoid
    (exact type match), falling back to the plain gradient where |delta_in| < 1e-10;
    linear layers, the residual add, the concatenation and AvgPool2d keep plain gradients.
  * A baseline of batch size 1 is broadcast by Captum itself (torch.cat of copies), so
    `residual.deeplift.shared` is what an unexpanded shared baseline gives too.

Format: see reference_writer.py (parsed by tests/support/reference.hpp).
"""
import os
import sys

sys.path.insert(0, os.environ.get("CAPTUM_PATH", "/tmp/captum070"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# Must precede everything: the model, inputs and Captum's internal tensors are float64.
torch.set_default_dtype(torch.float64)

import captum  # noqa: E402
from captum.attr import Deconvolution, DeepLift, GuidedBackprop, Saliency  # noqa: E402

from reference_writer import Writer  # noqa: E402  (this folder)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "residual_reference.txt")
BETAS = (1.0, 10.0)


class Residual(nn.Module):
    """Every activation is its own module instance: Captum's hooks store per-module state.
    Attribute names are the state_dict keys the C++ test loads."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.stem_act = nn.ReLU()
        self.conv_a = nn.Conv2d(4, 4, 3, padding=1)
        self.act_a = nn.LeakyReLU(0.1)
        self.conv_b = nn.Conv2d(4, 4, 3, padding=1)
        self.add_act = nn.ReLU()
        self.branch = nn.Conv2d(4, 2, 1)
        self.branch_act = nn.ELU()
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(54, 8)
        self.act1 = nn.Tanh()
        self.fc2 = nn.Linear(8, 6)
        self.act2 = nn.Softplus()
        self.fc3 = nn.Linear(6, 6)
        self.act3 = nn.Sigmoid()
        self.fc4 = nn.Linear(6, 3)

    def forward(self, x):  # x: [N, 2, 6, 6]
        h = self.stem_act(self.stem(x))
        r = self.conv_b(self.act_a(self.conv_a(h)))
        h2 = self.add_act(h + r)  # residual add
        b = self.branch_act(self.branch(h))
        c = torch.cat([h2, b], dim=1)  # concatenation: [N, 6, 6, 6]
        z = self.pool(c).flatten(1)  # [N, 54]
        z = self.act2(self.fc2(self.act1(self.fc1(z))))
        return self.fc4(self.act3(self.fc3(z)))


def smooth_forward(m, x, beta):
    """`m` with ReLU -> softplus(beta) and LeakyReLU(0.1) -> 0.1 z + 0.9 softplus(z, beta)
    (softplus' default threshold 20); ELU/Tanh/Softplus/Sigmoid unchanged."""
    relu = lambda z: F.softplus(z, beta=beta)  # noqa: E731
    leaky = lambda z: 0.1 * z + 0.9 * F.softplus(z, beta=beta)  # noqa: E731
    h = relu(m.stem(x))
    r = m.conv_b(leaky(m.conv_a(h)))
    h2 = relu(h + r)
    b = m.branch_act(m.branch(h))
    z = m.pool(torch.cat([h2, b], dim=1)).flatten(1)
    z = m.act2(m.fc2(m.act1(m.fc1(z))))
    return m.fc4(m.act3(m.fc3(z)))


def input_grad(f, x, target):
    """d f(x)[n, target[n]] / dx, by plain autograd (samples are independent)."""
    xi = x.clone().requires_grad_(True)
    out = f(xi)
    (g,) = torch.autograd.grad(out.gather(1, target[:, None]).sum(), xi)
    return g


class _Guided(torch.autograd.Function):
    """ReLU whose backward is relu(grad_out * 1[z > 0]) (guided) or relu(grad_out) (deconv):
    an independent re-implementation of what Captum's hook on nn.ReLU does."""

    @staticmethod
    def forward(ctx, z, deconv):
        ctx.save_for_backward(z)
        ctx.deconv = deconv
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return (F.relu(g) if ctx.deconv else F.relu(g * (z > 0).to(g.dtype))), None


def guided_forward(m, x, deconv):
    """`m` with only its nn.ReLU modules (stem_act, add_act) swapped for _Guided."""
    relu = lambda z: _Guided.apply(z, deconv)  # noqa: E731
    h = relu(m.stem(x))
    r = m.conv_b(m.act_a(m.conv_a(h)))
    h2 = relu(h + r)
    b = m.branch_act(m.branch(h))
    z = m.pool(torch.cat([h2, b], dim=1)).flatten(1)
    z = m.act2(m.fc2(m.act1(m.fc1(z))))
    return m.fc4(m.act3(m.fc3(z)))


def make_model():
    """The network of the reference, with its weights (also exported to TorchScript by
    make_torchscript.py)."""
    torch.manual_seed(11)
    model = Residual()
    with torch.no_grad():
        for m in (model.fc1, model.fc2, model.fc3, model.fc4):
            m.weight.mul_(2.0)  # push the saturating activations out of their linear range
    return model.eval()


def main():
    model = make_model()
    x = torch.randn(4, 2, 6, 6)
    base = 0.4 * torch.randn(4, 2, 6, 6)
    shared = 0.4 * torch.randn(1, 2, 6, 6)
    target = torch.tensor([0, 2, 1, 0], dtype=torch.long)

    w = Writer()
    checks = []  # (label, value) printed at the end for a human eye
    w.put("residual.input", x)
    w.put("residual.baseline", base)
    w.put("residual.shared_baseline", shared)
    w.put("residual.target", target)
    with torch.no_grad():
        out = model(x)
    w.put("residual.output", out)
    for key, value in model.state_dict().items():
        w.put(f"residual.{key}", value)

    dl = DeepLift(model)
    shared_batch = shared.expand(4, -1, -1, -1)
    for tag, b in (("zero", None), ("base", base), ("shared", shared_batch)):
        a, d = dl.attribute(x.clone(), baselines=b, target=target,
                            return_convergence_delta=True)
        # The plain call must agree with the one that also returns delta.
        assert torch.equal(a, dl.attribute(x.clone(), baselines=b, target=target))
        # Independent summation-to-delta check.
        ref = torch.zeros_like(x) if b is None else b
        with torch.no_grad():
            diff = (model(x) - model(ref)).gather(1, target[:, None]).squeeze(1)
        gap = (a.sum(dim=(1, 2, 3)) - diff).abs().max().item()
        assert gap < 1e-10, (tag, gap)
        w.put(f"residual.deeplift.{tag}", a)
        w.put(f"residual.deeplift.{tag}.delta", d)
        checks.append((f"DeepLift {tag} max |delta| (Captum)", d.abs().max().item()))
        checks.append((f"DeepLift {tag} max |sum - diff| (own)", gap))
        if tag == "shared":
            # Captum broadcasts a batch-1 baseline itself; the unexpanded call agrees.
            a1 = dl.attribute(x.clone(), baselines=shared, target=target)
            checks.append(("DeepLift shared: |unexpanded - expanded|",
                           (a1 - a).abs().max().item()))
            assert torch.allclose(a1, a, rtol=0, atol=1e-14)

    sal = Saliency(model).attribute(x.clone(), target=target, abs=False)
    assert torch.allclose(sal, input_grad(model, x, target), rtol=0, atol=1e-14)
    w.put("residual.saliency", sal)

    gbp = GuidedBackprop(model).attribute(x.clone(), target=target)
    w.put("residual.guided_backprop", gbp)
    dec = Deconvolution(model).attribute(x.clone(), target=target)
    w.put("residual.deconvolution", dec)
    # Independent re-implementation: only nn.ReLU modules altered.
    for label, mine, theirs in (
            ("guided_backprop", input_grad(lambda t: guided_forward(model, t, False), x, target),
             gbp),
            ("deconvolution", input_grad(lambda t: guided_forward(model, t, True), x, target),
             dec)):
        gap = (mine - theirs).abs().max().item()
        assert gap < 1e-13, (label, gap)
        checks.append((f"{label}: |Captum - own| ", gap))
    checks.append(("max |guided_backprop - saliency|", (gbp - sal).abs().max().item()))
    checks.append(("max |deconvolution - saliency|", (dec - sal).abs().max().item()))
    checks.append(("max |guided_backprop - deconvolution|", (gbp - dec).abs().max().item()))

    for beta in BETAS:
        f = lambda t, beta=beta: smooth_forward(model, t, beta)  # noqa: E731
        with torch.no_grad():
            s_out = f(x)
        s_sal = Saliency(f).attribute(x.clone(), target=target, abs=False)
        assert torch.allclose(s_sal, input_grad(f, x, target), rtol=0, atol=1e-14)
        w.put(f"residual.smooth.{int(beta)}.output", s_out)
        w.put(f"residual.smooth.{int(beta)}.saliency", s_sal)
        checks.append((f"smooth beta={beta:g}: max |output - relu output|",
                       (s_out - out).abs().max().item()))
        checks.append((f"smooth beta={beta:g}: max |saliency - relu saliency|",
                       (s_sal - sal).abs().max().item()))

    w.save(OUT, f"tests/data/make_residual_reference.py with Captum {captum.__version__} "
           f"and torch {torch.__version__}")

    for label, v in checks:
        print(f"{label:46s} {v:.3e}")
    print(f"wrote {len(w.lines)} tensors to {OUT}")


if __name__ == "__main__":
    main()
