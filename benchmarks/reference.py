#!/usr/bin/python3
"""The Python references that rar_bench's figures are compared with (docs/performance.md).

Written with Debian's python3-torch only, the same LibTorch as rar's build, one thread each:

* ``ig``: Integrated Gradients of the predicted logit, right Riemann rule, zero baseline, the
  way Captum 0.7's ``IntegratedGradients.attribute`` runs it by default (all N*m path rows in
  one forward and one backward; ``internal_batch_size=None``). When Captum is importable (e.g.
  ``PYTHONPATH=<captum source>``) Captum itself is timed as well.
* ``ig_norm`` / ``ig_sum_norm``: one training step of the RAR objectives written in PyTorch
  after the paper's official protocol: m right-Riemann points on the path x -> x', the inner
  maximization on every inner_stride-th point, sign ascent from a uniform random start in the
  L-inf ball, projection onto the ball and [0, 1], then the objective at the maximizer with all
  m points and its backward w.r.t. the parameters (double backward). The path is one batched
  tensor, as a PyTorch user would write it.
* ``attack``: the Ghorbani top-k attribution attack on a test set one image at a time, the loop
  of the official evaluation code, at the settings of rar_bench's Eval/attack case.

With ``--profile``, instead: one IG-NORM step of the paper-width network under
``torch.profiler``, its time split by kind of operator (docs/performance.md, "Where the time
goes"): convolutions, matrix products, activations and pooling, zero fills and gradient sums,
copies, the rest.

Prints one JSON object: {"context": {...}, "benchmarks": [{"name", "ms", "runs"}, ...]}, the
median time of each case. scripts/bench runs this next to rar_bench and scripts/bench-tables
prints the ratios.

    python3 benchmarks/reference.py [--threads 1] [--repetitions 5] [--only ig,ig_norm,ig_sum_norm,attack]
    python3 benchmarks/reference.py --profile
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F


class MnistCNN(torch.nn.Module):
    """examples/support/models.cpp's mnist_cnn: conv5x5 - relu - pool2, twice, fc - relu - fc."""

    def __init__(self, conv1=32, conv2=64, fc=1024, classes=10, softplus_beta=None):
        super().__init__()
        # softplus_beta: the smooth surrogate (every ReLU a softplus of that beta).
        self.act = F.relu if softplus_beta is None else (lambda z: F.softplus(z, softplus_beta))
        self.conv0 = torch.nn.Conv2d(1, conv1, 5, padding=2)
        self.conv1 = torch.nn.Conv2d(conv1, conv2, 5, padding=2)
        self.fc0 = torch.nn.Linear(conv2 * 7 * 7, fc)
        self.fc1 = torch.nn.Linear(fc, classes)

    def forward(self, x):
        x = F.max_pool2d(self.act(self.conv0(x)), 2)
        x = F.max_pool2d(self.act(self.conv1(x)), 2)
        return self.fc1(self.act(self.fc0(x.flatten(1))))


class ResNet(torch.nn.Module):
    """examples/support/models.cpp's slim ResNet (the GTSRB network of rar_bench)."""

    def __init__(self, classes=43, units=2, slope=0.1):
        super().__init__()
        self.slope = slope
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.units = torch.nn.ModuleList()
        channels = 16
        for stage in range(3):
            width = 16 << stage
            for unit in range(units):
                stride = 2 if stage > 0 and unit == 0 else 1
                a = torch.nn.Conv2d(channels, width, 3, stride=stride, padding=1)
                b = torch.nn.Conv2d(width, width, 3, padding=1)
                short = (torch.nn.Conv2d(channels, width, 1, stride=stride)
                         if stride != 1 or channels != width else None)
                self.units.append(torch.nn.ModuleList([a, b] + ([short] if short else [])))
                channels = width
        self.fc = torch.nn.Linear(channels, classes)

    def act(self, x):
        return F.leaky_relu(x, self.slope)

    def forward(self, x):
        flat = x.flatten(1)
        floor = 1.0 / flat.size(1) ** 0.5
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1, unbiased=False).clamp_min(floor).view(-1, 1, 1, 1)
        x = self.stem((x - mean) / std)
        for unit in self.units:
            h = unit[1](self.act(unit[0](self.act(x))))
            x = h + (unit[2](x) if len(unit) == 3 else x)
        return self.fc(self.act(x).mean((2, 3)))


def images(n, channels, side):
    torch.manual_seed(1)
    return torch.rand(n, channels, side, side)


def median_ms(fn, repetitions):
    fn()  # warm-up
    runs = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        runs.append(1e3 * (time.perf_counter() - start))
    return statistics.median(runs), runs


def ig_one_batch(model, x, target, m):
    """Captum's default IG: every path row in one forward and one backward."""
    alphas = torch.arange(1, m + 1, dtype=x.dtype) / m
    path = (alphas.view(-1, 1, 1, 1, 1) * x.unsqueeze(0)).reshape(m * x.size(0), *x.shape[1:])
    path.requires_grad_(True)
    out = model(path)
    score = out.gather(1, target.repeat(m).view(-1, 1)).sum()
    grads = torch.autograd.grad(score, path)[0].view(m, *x.shape)
    return grads.mean(0) * x


def robust_ig_objective(model, x, xa, y, alphas, weight, with_loss):
    """weight * ||IG^{loss_y}(x, x')||_1 [+ loss(x')], IG on the path x -> x' at `alphas`."""
    k, n = alphas.numel(), x.size(0)
    diff = xa - x
    path = (x.unsqueeze(0) + alphas.view(-1, 1, 1, 1, 1) * diff.unsqueeze(0)).reshape(
        k * n, *x.shape[1:])
    if not path.requires_grad:
        path.requires_grad_(True)
    losses = F.cross_entropy(model(path), y.repeat(k), reduction="none")
    grads = torch.autograd.grad(losses.sum(), path, create_graph=True)[0].view(k, *x.shape)
    ig = diff * grads.mean(0)
    objective = weight * ig.abs().flatten(1).sum(1)
    if with_loss:
        objective = objective + losses[(k - 1) * n:]
    return objective


def robust_ig_step(model, x, y, m, stride, inner_steps, epsilon, step_size, weight, with_loss):
    """One training step of IG-NORM (with_loss False) or IG-SUM-NORM: inner max, outer backward."""
    inner = torch.arange(stride, m + 1, stride, dtype=x.dtype) / m
    full = torch.arange(1, m + 1, dtype=x.dtype) / m
    xa = (x + torch.empty_like(x).uniform_(-epsilon, epsilon)).clamp(0, 1)
    for _ in range(inner_steps):
        xa = xa.detach().requires_grad_(True)
        objective = robust_ig_objective(model, x, xa, y, inner, weight, with_loss)
        grad = torch.autograd.grad(objective.sum(), xa)[0]
        with torch.no_grad():
            xa = torch.min(torch.max(xa + step_size * grad.sign(), x - epsilon), x + epsilon)
            xa = xa.clamp(0, 1)
    model.zero_grad()
    robust_ig_objective(model, x, xa.detach(), y, full, weight, with_loss).mean().backward()


def ig_map(model, x, target, m, create_graph):
    """|IG| of the target logit summed over channels, right Riemann, zero baseline, [N, H*W]."""
    alphas = torch.arange(1, m + 1, dtype=x.dtype) / m
    path = (alphas.view(-1, 1, 1, 1, 1) * x.unsqueeze(0)).reshape(m * x.size(0), *x.shape[1:])
    if not create_graph:
        path = path.detach().requires_grad_(True)
    score = model(path).gather(1, target.repeat(m).view(-1, 1)).sum()
    grads = torch.autograd.grad(score, path, create_graph=create_graph)[0].view(m, *x.shape)
    return (grads.mean(0) * x).abs().sum(1).flatten(1)


def topk_attack_one_image(model, smooth, x, y, k, epsilon, step_size, iterations, m):
    """The Ghorbani top-k attack on one image, as the official evaluation loops over a test set:
    sign ascent on -sum of the surrogate's map over the original top-k pixels, projection onto
    the ball and [0, 1], and after every step the real model's label check and map, keeping the
    iterate with the lowest top-k intersection."""
    top = ig_map(model, x, y, m, False).topk(k, dim=1).indices[0]
    best_in, best = 1.0, x
    xa = x.clone()
    for _ in range(iterations):
        xa = xa.detach().requires_grad_(True)
        objective = -ig_map(smooth, xa, y, m, True)[0, top].sum()
        grad = torch.autograd.grad(objective, xa)[0]
        with torch.no_grad():
            xa = torch.min(torch.max(xa + step_size * grad.sign(), x - epsilon), x + epsilon)
            xa = xa.clamp(0, 1)
            if model(xa).argmax(1).item() != y.item():
                continue
        now = ig_map(model, xa, y, m, False).topk(k, dim=1).indices[0]
        intersection = len(set(top.tolist()) & set(now.tolist())) / k
        if intersection < best_in:
            best_in, best = intersection, xa.detach()
    return best


# Operator kinds of the profile, by the operators' self time.
OPERATOR_KINDS = (
    ("convolutions", ("aten::mkldnn_convolution", "aten::convolution_backward",
                      "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward",
                      "aten::slow_conv_transpose2d")),
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("activations and pooling", ("aten::threshold_backward", "aten::clamp_min", "aten::relu",
                                 "aten::max_pool2d_with_indices",
                                 "aten::max_pool2d_with_indices_backward", "aten::gather",
                                 "aten::_log_softmax", "aten::_log_softmax_backward_data",
                                 "aten::nll_loss_forward", "aten::nll_loss_backward")),
    ("zero fills and gradient sums", ("aten::fill_", "aten::zero_", "aten::add", "aten::add_")),
    ("copies", ("aten::copy_", "aten::cat", "aten::clone")),
)


def profile_step():
    """Prints one IG-NORM step's operator time by kind (the paper-width CNN, the quick settings)."""
    from torch.profiler import ProfilerActivity, profile
    torch.manual_seed(0)
    model = MnistCNN().train()
    x = images(50, 1, 28)
    torch.manual_seed(3)
    y = torch.randint(0, 10, (50,))
    step = lambda: robust_ig_step(model, x, y, 10, 5, 5, 0.3, 0.01, 1.0, False)
    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(self_us.values())
    print("| operators | ms | share |\n|---|---:|---:|")
    counted = 0
    for kind, names in OPERATOR_KINDS:
        us = sum(self_us.get(n, 0) for n in names)
        counted += us
        print(f"| {kind} | {us / 1e3:.0f} | {100 * us / total:.1f} % |")
    print(f"| the rest (autograd bookkeeping, views, small operators) | {(total - counted) / 1e3:.0f} "
          f"| {100 * (total - counted) / total:.1f} % |")
    print(f"| **step** | **{total / 1e3:.0f}** | 100 % |")
    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:12]
    print("\nlargest operators: " + ", ".join(f"{k} {v / 1e3:.0f} ms" for k, v in top))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--only", default="",
                        help="comma-separated: ig, ig_norm, ig_sum_norm, attack")
    parser.add_argument("--profile", action="store_true",
                        help="print one IG-NORM step's time by kind of operator instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile_step()
        return
    only = set(filter(None, args.only.split(",")))
    results = []

    def record(name, fn, repetitions=args.repetitions):
        ms, runs = median_ms(fn, repetitions)
        results.append({"name": name, "ms": ms, "runs": runs})
        print(f"{name}: {ms:.1f} ms", file=sys.stderr)

    if not only or "ig" in only:
        try:
            from captum.attr import IntegratedGradients  # optional
        except ImportError:
            IntegratedGradients = None
        nets = {"mnist_cnn": (MnistCNN, 1, 28), "gtsrb_resnet": (ResNet, 3, 32)}
        for name, (cls, channels, side) in nets.items():
            torch.manual_seed(0)
            model = cls().eval()
            for m, n in ((16, 16), (50, 16), (16, 64), (128, 16)):
                x = images(n, channels, side)
                with torch.no_grad():
                    target = model(x).argmax(1)
                record(f"IG/{name}/m:{m}/N:{n}/one_batch",
                       lambda: ig_one_batch(model, x, target, m))
                if IntegratedGradients is not None:
                    ig = IntegratedGradients(model)
                    record(f"IG/{name}/m:{m}/N:{n}/captum", lambda: ig.attribute(
                        x, target=target, n_steps=m, method="riemann_right"))

    # The quick preset's network (conv 16/32, fc 128) at the quick settings: batch 50, m = 10,
    # inner stride 5, 5 inner steps of 0.01 in the 0.3-ball (bench_training.cpp's RAR/ cases).
    for term, weight, with_loss in (("ig_norm", 1.0, False), ("ig_sum_norm", 0.1, True)):
        if only and term not in only:
            continue
        for width, (c1, c2, fc) in (("quick", (16, 32, 128)), ("paper", (32, 64, 1024))):
            torch.manual_seed(0)
            model = MnistCNN(c1, c2, fc).train()
            x = images(50, 1, 28)
            torch.manual_seed(3)
            y = torch.randint(0, 10, (50,))
            record(f"RAR/{term}/mnist_cnn_{width}/N:50", lambda: robust_ig_step(
                model, x, y, 10, 5, 5, 0.3, 0.01, weight, with_loss))

    # Evaluation throughput (bench_eval.cpp's Eval/attack case): the top-k attack (k = 100,
    # epsilon 0.1, steps of 0.01, IG with 10 points for the surrogate's and the real maps,
    # softplus surrogate beta = 10) on 100 images with 3 iterations, one image at a time.
    if not only or "attack" in only:
        torch.manual_seed(0)
        model = MnistCNN().eval()
        smooth = MnistCNN(softplus_beta=10.0).eval()
        smooth.load_state_dict(model.state_dict())
        x = images(100, 1, 28)
        with torch.no_grad():
            y = model(x).argmax(1)
        record("Eval/attack/mnist_cnn/N:100/I:3/python_per_image", lambda: [
            topk_attack_one_image(model, smooth, x[i:i + 1], y[i:i + 1], 100, 0.1, 0.01, 3, 10)
            for i in range(x.size(0))], repetitions=min(args.repetitions, 3))

    context = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "library default"),
               "python": sys.version.split()[0]}
    json.dump({"context": context, "benchmarks": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
