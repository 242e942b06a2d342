#pragma once
/// @file
/// The distributional-robustness objective of Chen, Wu, Rastogi, Liang, Jha, "Robust
/// Attribution Regularization" (NeurIPS 2019, arXiv 1905.09957, §3.2), in the Lagrangian (dual)
/// form and trained like WRM of Sinha, Namkoong, Duchi, "Certifying Some Distributional
/// Robustness with Principled Adversarial Training" (ICLR 2018):
///
///     E_{(x,y)} [ sup_{x′ ∈ [clip_min, clip_max]^D} { ℓ(x′) + β‖IG^{ℓ_y}(x, x′)‖₁ − γ‖x′ − x‖_p^p } ]

#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/core/threat_model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/regularizer/robust_ig.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <utility>

namespace rar {

/// Options of `rar::distributional_ig`: the Lagrangian weights β and γ, the transport cost's
/// exponent p, the unconstrained inner ascent, the data range and the IG quadrature.
///
/// The ascent is the `rar::AscentOptions` block used by the other terms (flat setters
/// `attack_steps`, `attack_step_size`, `random_start`, `seed`), but its steps are plain
/// gradient steps x′ ← clip(x′ + α·∇) as in WRM, not sign steps, and nothing projects onto a
/// ball. Defaults: β = 0.1 (IG-SUM-NORM's), γ = 1, p = 2, 15 steps of α = 0.1 from x (WRM's 15
/// steps), m = 50 IG points with every 5th in the inner loop, data range [0, 1]. For the ascent
/// to be stable α·γ should stay below about 1/2 (the cost's curvature is 2γ for p = 2); choose
/// γ on the scale of the data (a larger γ keeps x′ nearer x).
///
/// Example:
/// @code
/// auto opts = rar::DistributionalIGOptions().beta(0.1).gamma(2.0).attack_steps(15)
///                 .attack_step_size(0.1);
/// auto objective = rar::distributional_ig(opts);   // contains ℓ(x′) already
/// objective(model, x, y).backward();
/// @endcode
struct DistributionalIGOptions {
  /// Weight β of ‖IG^{ℓ_y}(x, x′)‖₁ next to the loss at x′ (finite, ≥ 0; 0 gives WRM).
  RAR_ARG(double, beta) = 0.1;
  /// Lagrange multiplier γ of the transport cost (finite, ≥ 0): the price per unit of
  /// ‖x′ − x‖_p^p. Large γ keeps x′ at x and the term at ℓ(x).
  RAR_ARG(double, gamma) = 1.0;
  /// Exponent p of the cost c(x, x′) = ‖x′ − x‖_p^p = Σ_i |x′_i − x_i|^p (finite, ≥ 1;
  /// 2 is WRM's squared Euclidean cost).
  RAR_ARG(double, p) = 2.0;
  /// The inner ascent: plain gradient steps (defaults: 15 steps of 0.1 from x, seed 0).
  RAR_ARG(AscentOptions, ascent) = AscentOptions().steps(15).step_size(0.1).random_start(false);
  /// Gradient-ascent steps of the inner maximization: `ascent().steps()`.
  RAR_ARG_ALIAS(int64_t, ascent, attack_steps, steps);
  /// Step size α of x′ ← clip(x′ + α·∇): `ascent().step_size()`.
  RAR_ARG_ALIAS(double, ascent, attack_step_size, step_size);
  /// Start at a uniform random point of the cube [x − r, x + r] (r = `start_radius`, clipped to
  /// the range) instead of x: `ascent().random_start()`.
  RAR_ARG_ALIAS(bool, ascent, random_start, random_start);
  /// Seed of the random starts: call i of the term draws from the stream (seed, i).
  RAR_ARG_ALIAS(uint64_t, ascent, seed, seed);
  /// Half-width r of the random start's cube (finite, ≥ 0); unused without `random_start`.
  RAR_ARG(double, start_radius) = 0.01;
  /// Lower end of the data range; x′ is clipped to it (may be −∞).
  RAR_ARG(double, clip_min) = 0.0;
  /// Upper end of the data range (≥ clip_min; may be +∞).
  RAR_ARG(double, clip_max) = 1.0;
  /// IG points m on the path x → x′ (right Riemann, α_k = k/m, k = 1..m), as `ig_sum_norm`.
  RAR_ARG(int64_t, steps) = 50;
  /// The inner ascent uses every inner_stride-th point (k = s, 2s, .., m); must divide steps.
  RAR_ARG(int64_t, inner_stride) = 5;
  /// Mean (default) or sum over the batch.
  RAR_ARG(Reduction, reduction) = Reduction::mean;
  /// Where to record the inner ascent (null: nothing is recorded); see `rar::InnerMaxDiagnostics`.
  RAR_ARG(std::shared_ptr<InnerMaxDiagnostics>, diagnostics);
  /// Called with every iterate of the inner ascent and its per-sample objective (see
  /// `rar::AscentCallback`); returning true ends the ascent early.
  RAR_ARG(AscentCallback, callback);
};

namespace detail {

/// The validated configuration of one `distributional_ig` term.
struct DistributionalIGConfig {
  double beta, gamma, p;
  AscentOptions ascent;
  BallOptions start;  ///< the random start's cube (epsilon = start_radius) and the data range
  int64_t steps, inner_stride;
  Reduction reduction;
  std::shared_ptr<InnerMaxDiagnostics> diagnostics;
  AscentCallback callback;
};

/// Validates the options (every message names `rar::distributional_ig`, the field and value).
inline DistributionalIGConfig distributional_ig_config(const DistributionalIGOptions& o) {
  const char* fn = "rar::distributional_ig";
  TORCH_CHECK(std::isfinite(o.beta()) && o.beta() >= 0, fn, ": beta must be finite and >= 0, got ",
              o.beta());
  TORCH_CHECK(std::isfinite(o.gamma()) && o.gamma() >= 0, fn,
              ": gamma must be finite and >= 0, got ", o.gamma());
  TORCH_CHECK(std::isfinite(o.p()) && o.p() >= 1, fn, ": p must be finite and >= 1, got ", o.p());
  const BallOptions start = BallOptions()
                                .epsilon(o.start_radius())
                                .norm(Norm::linf)
                                .clip_min(o.clip_min())
                                .clip_max(o.clip_max());
  check_ball(fn, start, "start_radius");
  check_ascent(fn, o.ascent(), "attack_steps", "attack_step_size");
  TORCH_CHECK(o.steps() >= 1, fn, ": steps must be >= 1, got ", o.steps());
  TORCH_CHECK(o.inner_stride() >= 1 && o.inner_stride() <= o.steps() &&
                  o.steps() % o.inner_stride() == 0,
              fn, ": inner_stride must divide steps, got steps = ", o.steps(),
              " and inner_stride = ", o.inner_stride());
  return {o.beta(),  o.gamma(),        o.p(),           o.ascent(),      start,
          o.steps(), o.inner_stride(), o.reduction(), o.diagnostics(), o.callback()};
}

/// The transport cost c(x, x′) = Σ_i |x′_i − x_i|^p per sample, `[N]`.
inline torch::Tensor transport_cost(const torch::Tensor& x, const torch::Tensor& x_adv, double p) {
  const torch::Tensor d = (x_adv - x).flatten(1);
  return p == 2.0 ? d.pow(2).sum(1) : d.abs().pow(p).sum(1);
}

/// The per-sample Lagrangian ℓ(x′) + β‖IG^{ℓ_y}(x, x′)‖₁ − γ·c(x, x′), `[N]`, with IG from
/// `rar::integrated_gradients` (right Riemann, `ig_points` points, create_graph) so that it is
/// differentiable w.r.t. x′ and the parameters. β = 0 skips IG (WRM's objective).
template <class Model>
torch::Tensor distributional_objective(Model& model, const torch::Tensor& x,
                                       const torch::Tensor& x_adv, const torch::Tensor& y,
                                       int64_t ig_points, const DistributionalIGConfig& c) {
  torch::Tensor objective = score::cross_entropy(call_model(model, x_adv), y);
  if (c.beta > 0) {
    const torch::Tensor ig = integrated_gradients(model, x_adv,
                                                  IGOptions()
                                                      .baseline(x)
                                                      .target(y)
                                                      .steps(ig_points)
                                                      .method(Quadrature::riemann_right)
                                                      .create_graph(true)
                                                      .score(score::cross_entropy));
    objective = objective + c.beta * ig.abs().flatten(1).sum(1);
  }
  if (c.gamma > 0) objective = objective - c.gamma * transport_cost(x, x_adv, c.p);
  return objective;
}

/// The inner maximization of call `index`: `ascent.steps` plain gradient steps
/// x′ ← clip(x′ + α·∇_{x′} Σ_n objective_n) with the strided IG rule (m / inner_stride right
/// Riemann points), from x or from a random point of the start cube. Gradients are taken
/// w.r.t. x′ only; the result is detached.
template <class Model>
torch::Tensor distributional_inner_max(Model& model, const torch::Tensor& x,
                                       const torch::Tensor& y, const DistributionalIGConfig& c,
                                       uint64_t index) {
  const torch::Tensor anchor = x.detach();
  const int64_t inner_points = c.steps / c.inner_stride;
  auto evaluate = [&](const torch::Tensor& point) {
    const torch::Tensor leaf = point.detach().requires_grad_(true);
    return distributional_objective(model, anchor, leaf, y, inner_points, c);
  };
  AscentCallback callback = c.callback;
  if (c.diagnostics) {
    callback = chain_callbacks(
        inner_max_recorder(c.diagnostics,
                           [&](const torch::Tensor& point) { return evaluate(point).detach(); }),
        callback);
  }
  torch::Tensor x_adv = ascent_start(anchor, c.start, c.ascent, index);
  for (int64_t t = 0; t < c.ascent.steps(); ++t) {
    const torch::Tensor leaf = x_adv.detach().requires_grad_(true);
    const torch::Tensor objective = distributional_objective(model, anchor, leaf, y, inner_points, c);
    const torch::Tensor g = torch::autograd::grad({objective.sum()}, {leaf})[0];
    if (callback && callback(t, x_adv, objective.detach())) return x_adv;
    torch::NoGradGuard no_grad;
    x_adv = (x_adv + c.ascent.step_size() * g).clamp(c.start.clip_min(), c.start.clip_max());
  }
  if (callback) callback(c.ascent.steps(), x_adv, torch::Tensor());
  return x_adv.detach();
}

/// The term object behind `rar::distributional_ig`: inner ascent, then the Lagrangian at the
/// maximizer with all m IG points, differentiated w.r.t. the parameters (x′ held fixed).
/// Call i (counted by a `rar::CallCounter`) draws its random start from the stream (seed, i).
class DistributionalIGTerm {
 public:
  explicit DistributionalIGTerm(DistributionalIGConfig config) : config_(std::move(config)) {}

  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& x, const torch::Tensor& y) const {
    const char* fn = "rar::distributional_ig";
    check_labelled_batch(fn, x, y);
    check_in_clip_range(fn, "x", x, config_.start);
    torch::AutoGradMode grad_mode(true);
    const torch::Tensor x_adv = distributional_inner_max(model, x, y, config_, calls_.next());
    return reduce(distributional_objective(model, x.detach(), x_adv, y, config_.steps, config_),
                  config_.reduction);
  }

  /// The number of calls so far: the stream index of the next call.
  uint64_t calls() const noexcept { return calls_.count(); }

 private:
  DistributionalIGConfig config_;
  CallCounter calls_;
};

}  // namespace detail

/// The distributional-robustness objective of RAR in its Lagrangian form, trained like WRM:
/// E[ sup_{x′} { ℓ(x′) + β·‖IG^{ℓ_y}(x, x′)‖₁ − γ·‖x′ − x‖_p^p } ].
///
/// Chen et al. (NeurIPS 2019, §3.2) pose attribution robustness over a Wasserstein ball of
/// distributions around the data; as in Sinha, Namkoong, Duchi (ICLR 2018), the ball's
/// constraint W_c(P, Q) ≤ ρ is replaced by the penalty γ·c with c(x, x′) = ‖x′ − x‖_p^p, which
/// makes the worst case per sample: φ_γ(x) = sup_{x′} {ℓ(x′) + β‖IG(x, x′)‖₁ − γ c(x, x′)}.
/// The inner sup is unconstrained gradient ascent on φ's argument (`attack_steps` plain steps
/// of `attack_step_size`, clipped to [clip_min, clip_max] only), with IG of the cross-entropy
/// ℓ_y along x → x′ from `rar::integrated_gradients` (right Riemann, m/inner_stride points,
/// create_graph). Then the objective at the maximizer x′ is recomputed with all m points and
/// is differentiable in the parameters (x′ held fixed: Danskin's theorem). The value contains
/// ℓ(x′) already, so do not add `rar::cross_entropy()` for the paper's objective. With β = 0 it
/// is WRM; as γ → ∞, x′ → x and the term → ℓ(x). γρ, the constant of the dual, is omitted.
/// Cost per call: attack_steps × (forward + double backward over N·m/inner_stride rows) + one
/// forward and double backward over N·m rows (β = 0: N rows each).
///
/// Randomness, copies and threads as for `rar::ig_norm`: call i draws its random start (if
/// enabled) from the stream (seed, i); a copy continues from the original's count. Inputs
/// outside [clip_min, clip_max] raise `c10::Error`.
///
/// Example:
/// @code
/// auto objective = rar::distributional_ig(
///     rar::DistributionalIGOptions().beta(0.1).gamma(2.0).attack_steps(15).attack_step_size(0.1));
/// torch::Tensor loss = objective(model, x, y);
/// loss.backward();
/// @endcode
/// @param options β, γ, p, the ascent (attack_steps, attack_step_size, random_start, seed,
///        start_radius), the range, m, inner_stride, reduction, diagnostics, callback
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto distributional_ig(const DistributionalIGOptions& options = {}) {
  return make_term(detail::DistributionalIGTerm(detail::distributional_ig_config(options)));
}

}  // namespace rar
