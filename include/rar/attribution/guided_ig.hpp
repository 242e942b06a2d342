#pragma once
/// @file
/// Guided Integrated Gradients (Kapishnikov, Venugopalan, Avci, Wedin, Terry, Bolukbasi,
/// "Guided Integrated Gradients: An Adaptive Path Method for Removing Noise", CVPR 2021): an
/// adaptive path that at every step moves the features with the smallest absolute gradient,
/// batched over the samples (one forward and one backward over N rows per step).

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <string>

namespace rar {

/// Options for `rar::guided_ig`. Defaults are PAIR-code/saliency's `GuidedIG.GetMask`.
///
/// Example:
/// @code
/// auto opts = rar::GuidedIGOptions().target(labels).steps(128).max_dist(0.1);
/// torch::Tensor attr = rar::guided_ig(model, images, opts);
/// @endcode
struct GuidedIGOptions {
  /// The path's start x'. Undefined: zeros like the input. Any shape that broadcasts to the
  /// input's, same dtype and device (as `IGOptions::baseline`).
  RAR_ARG(torch::Tensor, baseline);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Number of steps m ≥ 1 of the path (PAIR: 200); each costs one forward and one backward.
  RAR_ARG(int64_t, steps) = 200;
  /// Share of the features, in [0, 1], selected at each move: those whose |gradient| is at most
  /// the `fraction` quantile (numpy's 'lower' rule) (PAIR: 0.25).
  RAR_ARG(double, fraction) = 0.25;
  /// How far, in [0, 1], a feature's α (its share of the way from x'_i to x_i) may run ahead of
  /// or behind the step's α = k/m: 0 is the straight line (IG with the left Riemann rule), 1 is
  /// unbounded (PAIR: 0.02).
  RAR_ARG(double, max_dist) = 0.02;
  /// Must be false: the feature selection is discrete, so the attributions have no useful
  /// derivative w.r.t. the input (see `rar::guided_ig`).
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// ∂score/∂x at the float64 points `x` `[N, D]`, evaluated in the input's dtype and shape.
template <class Model>
torch::Tensor guided_ig_gradient(Model& model, const torch::Tensor& input, const torch::Tensor& x,
                                 const torch::Tensor& target, const ScoreFunction& score,
                                 int64_t step) {
  const char* fn = "rar::guided_ig";
  const torch::Tensor points = x.to(input.scalar_type()).view(input.sizes()).requires_grad_(true);
  const torch::Tensor s = in_user_terms(
      fn, model, input, [&] { return score(call_model(model, points), target); },
      [&] {
        return "the path points of step " + std::to_string(step) + " (shape " +
               c10::str(points.sizes()) + ")";
      });
  TORCH_CHECK(s.dim() == 1 && s.size(0) == input.size(0), fn,
              ": the score function must return one value per sample, shape [", input.size(0),
              "], got ", s.sizes());
  return torch::autograd::grad({s.sum()}, {points})[0].detach().to(torch::kDouble).view(x.sizes());
}

}  // namespace detail

/// Guided IG of `score(model(x), target)`: Integrated Gradients along an adaptive path from the
/// baseline that first moves the features whose gradient is small.
///
/// Step k = 1..m starts from the current point p with gradient g = ∇F(p) and moves p until
/// ‖p − x‖₁ = (1 − k/m)·‖x − x'‖₁. Every feature's α_i = (p_i − x'_i)/(x_i − x'_i) is kept in
/// [k/m − max_dist, k/m + max_dist] ∩ [0, 1]: features behind are first set to the lower end; then,
/// repeatedly, the features with |g_i| at most the `fraction` quantile of |g| (those already at
/// the upper end excluded) move towards the upper end, all the way or by the share γ that closes
/// the remaining L1 gap exactly. Each move adds (p_new − p_old) ⊙ g to the attributions, so
/// Σ_i GuidedIG_i ≈ F(x) − F(x') (a left Riemann sum along the path; exact for a linear F,
/// where Guided IG equals IG). This is PAIR-code/saliency's `saliency/core/guided_ig.py`
/// (`guided_ig_impl`) step for step, with its tolerance 1e-9 on the L1 target, its ties (every
/// feature at the threshold is selected) and its features equal to their baseline (never
/// selected). One deliberate difference: where PAIR would loop forever (no feature left to
/// select and the L1 target not yet met), the sample's step ends.
///
/// The path is computed in float64 whatever the input's dtype (the selection compares values
/// exactly); the model sees the points in the input's dtype. Batched: every step is one forward
/// and one backward over the N samples, the moves of all samples are taken together. The feature
/// selection is discrete, so the attributions are not differentiable: `create_graph` must be
/// false. Does not change the model's mode, flags or parameter gradients.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::guided_ig(model, x, rar::GuidedIGOptions().target(y).steps(100));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options baseline, target, steps, fraction, max_dist, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor guided_ig(Model&& model, const torch::Tensor& input,
                        const GuidedIGOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::guided_ig";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(!options.create_graph(), fn,
              ": create_graph must be false: Guided IG selects features by comparing gradients, a "
              "discrete choice, so its attributions have no useful derivative w.r.t. the input; "
              "differentiate rar::integrated_gradients or rar::blur_ig instead");
  TORCH_CHECK(options.steps() >= 1, fn, ": steps must be >= 1, got ", options.steps());
  TORCH_CHECK(options.fraction() >= 0 && options.fraction() <= 1, fn,
              ": fraction must be in [0, 1], got ", options.fraction());
  TORCH_CHECK(options.max_dist() >= 0 && options.max_dist() <= 1, fn,
              ": max_dist must be in [0, 1], got ", options.max_dist());
  rar::detail::check_callable(fn, "score", options.score());
  const torch::Tensor baseline = detail::expand_baseline(fn, options.baseline(), input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  torch::AutoGradMode grad_mode(true);

  const int64_t n = input.size(0), m = options.steps();
  const torch::Tensor xi = input.detach().to(torch::kDouble).reshape({n, -1});
  const torch::Tensor xb = baseline.detach().to(torch::kDouble).reshape({n, -1});
  const int64_t d = xi.size(1);
  const torch::Tensor diff = xi - xb;
  const torch::Tensor l1_total = diff.abs().sum(1);
  const torch::Tensor moving = l1_total != 0;  // samples equal to their baseline: attribution 0
  const int64_t k =
      static_cast<int64_t>(std::floor(static_cast<double>(d - 1) * options.fraction()));
  const double inf = std::numeric_limits<double>::infinity();
  torch::Tensor x = xb.clone();
  torch::Tensor attr = torch::zeros_like(xi);
  for (int64_t step = 0; step < m; ++step) {
    const torch::Tensor g =
        detail::guided_ig_gradient(model, input, x, target, options.score(), step);
    torch::Tensor grad = g.clone();
    const double alpha = (static_cast<double>(step) + 1.0) / static_cast<double>(m);
    const double alpha_min = std::max(alpha - options.max_dist(), 0.0);
    const double alpha_max = std::min(alpha + options.max_dist(), 1.0);
    const torch::Tensor x_min = xb + diff * alpha_min;
    const torch::Tensor x_max = xb + diff * alpha_max;
    const torch::Tensor l1_target =
        l1_total * (1.0 - static_cast<double>(step + 1) / static_cast<double>(m));
    torch::NoGradGuard no_grad;
    torch::Tensor active = moving.clone();
    while (active.any().item<bool>()) {
      const torch::Tensor rows = active.unsqueeze(1);
      const torch::Tensor x_old = x.clone();
      const torch::Tensor x_alpha =
          torch::where(diff != 0, (x - xb) / diff, torch::full_like(x, alpha_max));
      x = torch::where(rows & (x_alpha < alpha_min), x_min, x);
      const torch::Tensor l1_current = (x - xi).abs().sum(1);
      // math.isclose(l1_target, l1_current, rel_tol=1e-9, abs_tol=1e-9)
      const torch::Tensor close =
          (l1_target - l1_current).abs() <=
          torch::clamp_min(1e-9 * torch::maximum(l1_target.abs(), l1_current.abs()), 1e-9);
      const torch::Tensor selecting = active & close.logical_not();
      grad = torch::where(selecting.unsqueeze(1) & (x == x_max), torch::full_like(grad, inf), grad);
      const torch::Tensor magnitude = grad.abs();
      const torch::Tensor threshold = std::get<0>(torch::kthvalue(magnitude, k + 1, 1, true));
      const torch::Tensor s = (magnitude <= threshold) & (grad != inf) & selecting.unsqueeze(1);
      const torch::Tensor l1_s = ((x - x_max).abs() * s).sum(1);
      const torch::Tensor gamma =
          torch::where(l1_s > 0, (l1_current - l1_target) / l1_s, torch::full_like(l1_s, inf));
      const torch::Tensor all_the_way = gamma > 1.0;
      x = torch::where(
          s, torch::where(all_the_way.unsqueeze(1), x_max, x + (x_max - x) * gamma.unsqueeze(1)),
          x);
      attr = attr + torch::where(rows, (x - x_old) * g, torch::zeros_like(g));
      // Continue where γ > 1 and something could still move (PAIR would loop forever otherwise).
      active = selecting & all_the_way & (l1_s > 0);
    }
  }
  return attr.view(input.sizes()).to(input.scalar_type());
}

}  // namespace rar
