#pragma once
/// @file
/// Attacks on attributions (Ghorbani, Abid, Zou, "Interpretation of Neural Networks is
/// Fragile", AAAI 2019), as used by Chen et al. ("Robust Attribution Regularization",
/// NeurIPS 2019) to measure attribution robustness (IN: top-k intersection, CO: Kendall's tau).

#include <rar/attack/surrogate_beta.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/threat_model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/center_of_mass.hpp>
#include <rar/metrics/lens.hpp>
#include <rar/metrics/topk.hpp>
#include <rar/nn/model.hpp>
#include <rar/nn/scope.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rar {

/// What an attribution attack changes in the map (Ghorbani et al. 2019, section 3).
///
/// Example: `rar::AttributionAttackOptions().kind(rar::AttackKind::mass_center)`.
enum class AttackKind {
  /// Lower the map's mass on the k features that are largest in the original map.
  top_k,
  /// Move the map's center of mass away from the original's.
  mass_center,
  /// Raise the map's mass inside `target_region`.
  targeted,
  /// Baseline: steps in random sign directions (no gradient).
  random_sign,
  /// The user's objective (option `objective`): ascend
  /// `objective(surrogate_map, original_map, iterate)`, one value per sample.
  custom
};

/// A user objective for `AttackKind::custom`: `(surrogate_map, original_map, iterate) -> [M]`,
/// the per-sample value the attack ascends (differentiable w.r.t. `iterate` through
/// `surrogate_map`, or directly).
///
/// - `surrogate_map`: the surrogate's saliency maps at the iterate, `[M, ...map]` (the shape of
///   `rar::attribution_map`'s output), part of the graph;
/// - `original_map`: the real model's maps at the inputs, same shape, detached;
/// - `iterate`: the iterate x′ `[M, ...]` the surrogate's map was computed at (requires grad).
///
/// The M rows are the attacked samples, those the model classifies as their target at the
/// input, in their order in the batch (all N when every sample is classified correctly).
///
/// Example (spread the map's mass: ascend its entropy):
/// @code
/// rar::AttackObjective entropy = [](const torch::Tensor& map, const torch::Tensor&,
///                                   const torch::Tensor&) {
///   const torch::Tensor p = map.flatten(1);
///   return -(p * torch::log(p + 1e-12)).sum(1);
/// };
/// auto opts = rar::AttributionAttackOptions().kind(rar::AttackKind::custom).objective(entropy);
/// @endcode
using AttackObjective = std::function<torch::Tensor(const torch::Tensor& surrogate_map,
                                                    const torch::Tensor& original_map,
                                                    const torch::Tensor& iterate)>;

/// How the iterate returned by an attribution attack is chosen: among the iterates that keep
/// the prediction, the one that is most dissimilar to the original map by this measure.
///
/// Example: `rar::AttributionAttackOptions().measure(rar::AttackMeasure::kendall_tau)`.
enum class AttackMeasure {
  /// Lowest top-k intersection (Ghorbani et al.'s default "intersection").
  topk_intersection,
  /// Lowest Kendall's tau (the measure in the configs of Chen et al.'s evaluation).
  kendall_tau,
  /// Largest center-of-mass shift (Ghorbani et al.'s "mass_center").
  center_of_mass_shift,
  /// Lowest LENS recall at k with a 3 × 3 neighbourhood (`rar::lens`, Kamath et al. 2024):
  /// the iterate whose top-k features are farthest from the original's, not merely different
  /// pixels. Needs maps of images (`[N, H, W]`, as `rar::attribution_map` makes of
  /// `[N, C, H, W]` inputs).
  lens_recall
};

/// Options for `rar::attribution_attack`.
///
/// The threat model is two blocks, `ball` (epsilon, norm, clip_min, clip_max) and `ascent`
/// (iterations = steps, step_size, random_start, seed); the flat setters forward to them. The
/// defaults are the MNIST evaluation of Chen et al. (NeurIPS 2019): top-k attack with k = 200,
/// ε = 0.3 in L∞, 100 iterations of 0.01 from the input itself, pixels in [0, 1].
///
/// Example:
/// @code
/// auto opts = rar::AttributionAttackOptions().k(100).epsilon(0.1).iterations(100);
/// // Pull the map into the left half of 28×28 maps:
/// torch::Tensor left = torch::zeros({28, 28}, torch::kBool);
/// left.slice(1, 0, 14).fill_(true);
/// auto targeted = rar::AttributionAttackOptions().kind(rar::AttackKind::targeted)
///                     .target_region(left);
/// // An L2 attack with normalized-gradient steps:
/// auto l2 = rar::AttributionAttackOptions().norm(rar::Norm::l2).epsilon(2.0).step_size(0.1);
/// @endcode
struct AttributionAttackOptions {
  /// Which attack.
  RAR_ARG(AttackKind, kind) = AttackKind::top_k;
  /// Number of top features: the features whose mass `top_k` lowers and those compared by the
  /// reported top-k intersection (1 ≤ k ≤ number of map features per sample).
  RAR_ARG(int64_t, k) = 200;
  /// The ball N(x, ε) ∩ [clip_min, clip_max] (defaults: ε = 0.3, L∞, [0, 1]).
  RAR_ARG(BallOptions, ball) = BallOptions();
  /// The ascent (defaults: 100 iterations of 0.01 from the input itself, seed 0).
  RAR_ARG(AscentOptions, ascent) = AscentOptions().steps(100).random_start(false);
  /// Radius ε ≥ 0 of the ball around each input: `ball().epsilon()`.
  RAR_ARG_ALIAS(double, ball, epsilon, epsilon);
  /// The ball's norm: L∞ (sign steps, the papers' attack) or L2 (normalized-gradient steps):
  /// `ball().norm()`.
  RAR_ARG_ALIAS(Norm, ball, norm, norm);
  /// Lower end of the valid input range: `ball().clip_min()`.
  RAR_ARG_ALIAS(double, ball, clip_min, clip_min);
  /// Upper end of the valid input range (≥ clip_min): `ball().clip_max()`.
  RAR_ARG_ALIAS(double, ball, clip_max, clip_max);
  /// Length α ≥ 0 of each step: `ascent().step_size()`.
  RAR_ARG_ALIAS(double, ascent, step_size, step_size);
  /// Number of iterations (≥ 0; 0 returns the inputs): `ascent().steps()`.
  RAR_ARG_ALIAS(int64_t, ascent, iterations, steps);
  /// Start from a random point of the ball (a candidate too) instead of the input:
  /// `ascent().random_start()`. Off by default, as in the papers.
  RAR_ARG_ALIAS(bool, ascent, random_start, random_start);
  /// Seed of the random start and of the `random_sign` directions (the other kinds are
  /// deterministic): `ascent().seed()`. Everything is drawn from the stream (seed, 0): the start
  /// first, then one direction per iteration.
  RAR_ARG_ALIAS(uint64_t, ascent, seed, seed);
  /// For `targeted`: a bool mask of the map's shape per sample (`[H, W]` for images with the
  /// default map options), or one mask per sample `[N, H, W]`, on the input's device. Ignored
  /// by the other kinds.
  RAR_ARG(torch::Tensor, target_region);
  /// For `custom`: the objective to ascend (see `rar::AttackObjective`). Ignored by the other
  /// kinds.
  RAR_ARG(AttackObjective, objective);
  /// How attributions become saliency maps (see `rar::attribution_map`).
  RAR_ARG(MapOptions, map) = MapOptions();
  /// Which measure picks the returned iterate.
  RAR_ARG(AttackMeasure, measure) = AttackMeasure::topk_intersection;
  /// Measure the real model's label and map every `measure_every` iterations (and after the
  /// last one); the best iterate is chosen among the measured ones. 1 (default) measures every
  /// iterate, as the official code does; larger values trade a little attack strength for
  /// speed when the measured map is expensive (e.g. IG with many steps).
  RAR_ARG(int64_t, measure_every) = 1;
  /// Called with every iterate (see `rar::AscentCallback`): the whole batch `[N, ...]` (the
  /// samples that are not attacked stay at their input) and the per-sample objective of the
  /// kind (NaN for the samples that are not attacked; undefined for `random_sign`).
  RAR_ARG(AscentCallback, callback);
  /// Before attacking, check on the first attacked sample that the surrogate's map is
  /// differentiated correctly: the directional derivative that autograd gives for the map
  /// must match central differences of the map itself. An explainer that ignores
  /// `create_graph` (its gradients detached, so the attack's gradient only flows through the
  /// (x − x′) factor of IG) fails it with an error; the attack would silently be weaker than
  /// the random-sign baseline. Costs about six calls of the method on one sample, on float64
  /// inputs only: in float32 the differences are too coarse near max-pool kinks to decide
  /// without false refusals. In every dtype, where the surrogate has parameters that require
  /// grad, a map computed with `create_graph` must also depend on them (one more call and a
  /// backward): an explainer that detaches its gradients fails that in float32 too.
  RAR_ARG(bool, check_gradient) = true;
};

/// The outcome of `rar::attribution_attack`.
///
/// Example:
/// @code
/// rar::AttackResult r = rar::attribution_attack(net, smooth, ig, x, y);
/// torch::Tensor kept = r.prediction_kept.cpu();
/// double in = r.topk_intersection.index({kept}).mean().item<double>();  // the paper's IN
/// @endcode
struct AttackResult {
  /// The chosen iterate per sample `[N, ...]` (or the input itself, see `improved`), detached.
  torch::Tensor adversarial;
  /// Saliency maps of the real model at the inputs, on the input's device.
  torch::Tensor original_map;
  /// Saliency maps of the real model at `adversarial`.
  torch::Tensor adversarial_map;
  /// Top-k intersection of `original_map` and `adversarial_map` at k (IN), float64 `[N]`, CPU.
  torch::Tensor topk_intersection;
  /// Kendall's tau-b of `original_map` and `adversarial_map` (CO), float64 `[N]`, CPU.
  torch::Tensor kendall_tau;
  /// bool `[N]` on the input's device: the real model classifies `adversarial[n]` as
  /// `target[n]`. False exactly for the samples whose input was misclassified (not attacked).
  torch::Tensor prediction_kept;
  /// bool `[N]` on the input's device: an iterate that keeps the prediction and beats the input
  /// on the measure was found; where false, `adversarial[n]` is `input[n]` (IN = 1, tau = 1).
  torch::Tensor improved;
  /// bool `[N]` on the input's device: the surrogate predicts the model's class at the input.
  /// Where false, the surrogate's map is a poor guide for that sample (raise its β).
  torch::Tensor surrogate_agreement;
  /// The softplus β of the surrogate when the attack chose it (`rar::auto_surrogate()`); +∞
  /// when it chose the model itself (a smooth model: no ReLU-like activation to smooth); NaN
  /// when the caller passed the surrogate.
  double surrogate_beta = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

/// The object a model argument refers to (the module behind a holder), to tell whether the
/// surrogate is the model itself.
template <class M>
const void* model_identity(const M& m) {
  if constexpr (is_module_holder_v<std::decay_t<M>>) {
    return static_cast<const void*>(m.ptr().get());
  } else {
    return static_cast<const void*>(&m);
  }
}

/// Whether `model` has nothing for a softplus surrogate to smooth: no `torch::nn` ReLU,
/// LeakyReLU, ReLU6, PReLU or Hardtanh in its module tree, and no `rar::nn` ReLU or LeakyReLU
/// call on the first sample (GELU, SiLU, ELU, Sigmoid, Tanh and Softplus are smooth already).
/// A TorchScript model is smooth when its scope-aware twin calls no ReLU or leaky ReLU and no
/// kinked operator that rar does not route.
template <class Model>
bool is_smooth_model(Model& model, const torch::Tensor& input) {
  if constexpr (rar::nn::detail::is_torchscript_v<std::decay_t<Model>>) {
    auto twin = model.scope_aware();
    if (!twin.kinked_operators().empty()) return false;
    rar::nn::Scope scope;
    scope.beta(1.0);
    torch::NoGradGuard no_grad;
    call_model(twin, input.slice(0, 0, 1));
    return scope.state().kinked_calls == 0;
  } else {
    if (const torch::nn::Module* root = rar::nn::detail::module_root(model)) {
      if (rar::nn::detail::first_torch_activation(*root, rar::nn::detail::Sees::nonsmooth).first !=
          nullptr)
        return false;
    }
    rar::nn::Scope scope;
    scope.beta(1.0);
    torch::NoGradGuard no_grad;
    call_model(model, input.slice(0, 0, 1));
    return scope.state().kinked_calls == 0;
  }
}

/// Refuses a surrogate that behaves as the model (the model itself, a copy, a lambda or a
/// TorchScript export of it: the outputs on the first sample are compared, not the objects)
/// when it has no second derivative at the input (a piecewise-linear, e.g. ReLU, network): the
/// attack differentiates the surrogate's map, whose gradient through such a network misses the
/// map's curvature entirely, so the attack would be weaker than the random-sign baseline while
/// seeming to run. One forward and one Hessian-vector product of the target score on the first
/// sample decide.
template <class Model, class Surrogate>
void check_surrogate_has_curvature(const char* fn, Model& model, Surrogate& surrogate,
                                   const torch::Tensor& x0, const torch::Tensor& target) {
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor x = x0.slice(0, 0, 1).detach().requires_grad_(true);
  const torch::Tensor out = call_model(surrogate, x);
  const torch::Tensor score = out.gather(1, target.slice(0, 0, 1).view({1, 1})).sum();
  const torch::Tensor g = torch::autograd::grad({score}, {x}, {}, true, true)[0];
  bool curved = g.requires_grad();
  if (curved) {
    const torch::Tensor v = torch::ones_like(g);
    const auto hv = torch::autograd::grad({(g * v).sum()}, {x}, {}, false, false, /*allow_unused=*/true)[0];
    curved = hv.defined() && hv.abs().max().template item<double>() > 0;
  }
  // A flat map (no gradient at all, e.g. a model with zero weights) gives the attack nothing
  // to climb either way; only a map with a gradient but no curvature is the silent weak case.
  if (curved || g.abs().max().template item<double>() == 0) return;
  bool same = model_identity(model) == model_identity(surrogate);
  if (!same) {
    torch::NoGradGuard no_grad;
    const torch::Tensor mine = call_model(model, x.detach());
    same = mine.sizes() == out.sizes() && torch::allclose(mine, out.detach(), 1e-6, 1e-8);
  }
  TORCH_CHECK(!same, fn, ": the surrogate computes what the model computes (the model itself, "
              "a copy or a wrapper of it), and the model has no second derivative at the input "
              "(a piecewise-linear network such as a ReLU net): the attack's gradient would miss "
              "the map's curvature and the attack would be weak; pass "
              "rar::smooth_surrogate(model, beta) as the surrogate (rar::choose_surrogate_beta "
              "picks beta), or rar::auto_surrogate()");
}

/// The shape of one sample's saliency map for inputs of shape `input_sizes`.
inline std::vector<int64_t> map_sample_shape(torch::IntArrayRef input_sizes,
                                             const MapOptions& map) {
  std::vector<int64_t> shape(input_sizes.begin() + 1, input_sizes.end());
  if (map.sum_channels() && input_sizes.size() >= 3) shape.erase(shape.begin());
  return shape;
}

/// Calls the explainer (through `rar::detail::call_explainer`) and checks that it returned
/// attributions of x's shape.
template <class Net, class Method>
torch::Tensor call_method(const char* fn, Method& method, Net& net, const torch::Tensor& x,
                          const torch::Tensor& target, bool create_graph, const char* which) {
  return call_explainer(fn, method, net, x, target, create_graph, MapShape::input, which);
}

/// Refuses an explainer whose map is not differentiated correctly through the surrogate,
/// typically one that ignores `create_graph`: its input gradients are detached, so autograd
/// sees only the explicit dependence on x (IG's (x − x′) factor) and misses the map's
/// curvature, and the attack silently becomes weaker than the random-sign baseline.
///
/// Near the first sample (a random step of 5 % of the data range off it, which breaks exact ties
/// of max-pools and ReLUs), with a fixed random weighting w and unit direction d (seeded, up to
/// three probes), the autograd derivative of S(x) = Σ w ⊙ a(x) along d is compared with the central
/// difference (S(x + h·d) − S(x − h·d)) / 2h at h and 2h (h = 10⁻² of the data range in float32,
/// 10⁻⁵ in float64). The check only decides when the two differences agree with each other and
/// stand above the map's rounding noise (100·eps·Σ|w ⊙ a|/h); else the map is too rough or too
/// flat there to tell, and it passes. Then an autograd derivative off by more than half of the
/// difference is an error.
template <class Surrogate, class Method>
void check_map_gradient(const char* fn, Surrogate& surrogate, Method& method,
                        const torch::Tensor& x0, const torch::Tensor& target,
                        const BallOptions& ball) {
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor t = target.slice(0, 0, 1);
  at::Generator gen = seeded_generator(0x67726164ULL, 0);
  const double range = std::isfinite(ball.clip_max() - ball.clip_min())
                           ? ball.clip_max() - ball.clip_min()
                           : std::max(1.0, x0.abs().max().template item<double>());
  // Off the input by a small random step: inputs with exact ties (a flat background under a
  // max-pool, ReLUs at exactly 0) sit on kinks, where central differences average two slopes
  // and autograd takes one; a step of 5 % of the range (in L2) breaks the ties.
  torch::Tensor u = normal_like(gen, x0.slice(0, 0, 1));
  const torch::Tensor x = (x0.slice(0, 0, 1).detach() + 0.05 * range * u / u.norm()).detach();
  const bool dbl = x.scalar_type() == torch::kDouble;
  const double h = (dbl ? 1e-5 : 1e-2) * range;
  // Rounding in the map: a difference of S below this many times eps·Σ|w ⊙ a|/h is noise.
  const double eps = dbl ? 2.2e-16 : 1.2e-7;
  for (int probe = 0; probe < 3; ++probe) {
    const torch::Tensor w = normal_like(gen, x);
    torch::Tensor d = normal_like(gen, x);
    d = d / d.norm();
    // The same function as the one differentiated: the method with create_graph = true (it
    // may use fewer steps then than for the measured map).
    const torch::Tensor wd = w.to(torch::kDouble);
    const auto s = [&](const torch::Tensor& xs) {
      return (wd * call_method(fn, method, surrogate, xs, t, true, "surrogate")
                       .detach()
                       .to(torch::kDouble))
          .sum()
          .template item<double>();
    };
    const torch::Tensor xs = x.clone().requires_grad_(true);
    const torch::Tensor a = call_method(fn, method, surrogate, xs, t, true, "surrogate");
    if (!a.requires_grad()) return;  // reported by attack_direction with its own message
    const torch::Tensor g =
        torch::autograd::grad({(w * a).sum()}, {xs}, {}, false, false, /*allow_unused=*/true)[0];
    const double autograd = g.defined() ? (g * d).sum().template item<double>() : 0.0;
    const double fd1 = (s(x + h * d) - s(x - h * d)) / (2 * h);
    const double fd2 = (s(x + 2 * h * d) - s(x - 2 * h * d)) / (4 * h);
    const double scale = std::max({std::abs(fd1), std::abs(fd2), std::abs(autograd), 1e-12});
    const double noise =
        1e2 * eps * (wd * a.detach().to(torch::kDouble)).abs().sum().template item<double>() / h;
    if (!std::isfinite(fd1) || !std::isfinite(fd2) || std::abs(fd1 - fd2) > 0.1 * scale ||
        std::max(std::abs(fd1), std::abs(autograd)) < noise)
      continue;
    TORCH_CHECK(std::abs(autograd - fd1) <= 0.5 * scale, fn,
                ": the surrogate's map is not differentiated correctly: along a random direction "
                "its derivative is ", fd1, " by finite differences but ", autograd,
                " by autograd. Does the method ignore create_graph? With create_graph = true it "
                "must build its input gradients with create_graph (e.g. pass it on to "
                "rar::IGOptions().create_graph), or the attack misses the map's curvature and is "
                "weak; AttributionAttackOptions().check_gradient(false) skips this check");
  }
}

/// Refuses an explainer that ignores `create_graph`, in any dtype, where the surrogate has
/// parameters that require grad: a map computed with `create_graph` depends on the weights
/// through its input gradients, so the graph of Σ w ⊙ a must reach at least one of them; the
/// map of an explainer that detaches its gradients reaches none (its only dependence is the
/// explicit one on x, IG's (x − x′) factor). Unlike the finite-difference check, this needs no
/// precision, so it also runs in float32, the common case. One call of the method on one
/// sample, and one backward.
template <class Surrogate, class Method>
void check_map_graph_reaches_parameters(const char* fn, Surrogate& surrogate, Method& method,
                                        const torch::Tensor& x0, const torch::Tensor& target) {
  std::vector<torch::Tensor> params;
  for (const torch::Tensor& p : model_parameters(surrogate))
    if (p.requires_grad()) params.push_back(p);
  if (params.empty()) return;  // nothing to reach: the finite-difference check decides
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor x = x0.slice(0, 0, 1).detach().requires_grad_(true);
  const torch::Tensor a = call_method(fn, method, surrogate, x, target.slice(0, 0, 1), true,
                                      "surrogate");
  if (!a.requires_grad()) return;  // reported by attack_direction with its own message
  const auto grads = torch::autograd::grad({a.sum()}, params, {}, false, false,
                                           /*allow_unused=*/true);
  const bool reaches =
      std::any_of(grads.begin(), grads.end(), [](const torch::Tensor& g) { return g.defined(); });
  TORCH_CHECK(reaches, fn,
              ": the surrogate's map, computed with create_graph = true, does not depend on the "
              "surrogate's parameters, so its input gradients were detached. Does the method "
              "ignore create_graph? With create_graph = true it must build its input gradients "
              "with create_graph (e.g. pass it on to rar::IGOptions().create_graph), or the "
              "attack misses the map's curvature and is weak; "
              "AttributionAttackOptions().check_gradient(false) skips this check");
}

/// The real model's prediction (argmax of its output `[N, C]`), without a graph.
template <class Model>
torch::Tensor predict(const char* fn, Model& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const torch::Tensor out = call_model(model, x);
  TORCH_CHECK(out.dim() == 2 && out.size(0) == x.size(0), fn,
              ": the model must return logits [N, C] = [", x.size(0), ", C], got shape ",
              out.sizes());
  return out.argmax(1);
}

/// The selection criterion of each sample (lower is more dissimilar), float64 `[N]` on the CPU.
inline torch::Tensor attack_criterion(AttackMeasure measure, const torch::Tensor& original,
                                      const torch::Tensor& current, int64_t k) {
  switch (measure) {
    case AttackMeasure::kendall_tau:
      return rar::kendall_tau(original, current);
    case AttackMeasure::center_of_mass_shift:
      return -rar::center_of_mass_shift(original, current);
    case AttackMeasure::lens_recall:
      return rar::lens(original, current, LensOptions().k(k).window(1)).recall;
    case AttackMeasure::topk_intersection:
    default:
      return rar::topk_intersection(original, current, k);
  }
}

/// What validation of an attribution attack's arguments yields.
struct AttackSetup {
  torch::Tensor target;           ///< `[N]` int64 on the input's device
  std::vector<int64_t> map_shape;  ///< one sample's map
  int64_t features = 0;           ///< features per map
  torch::Tensor region;           ///< `targeted`: `[N, features]` in the input's dtype
};

/// Validates the arguments of `rar::attribution_attack` (the ball and the ascent through their
/// one check each) and prepares the target and the target region.
inline AttackSetup check_attribution_attack(const char* fn, const torch::Tensor& input,
                                            const torch::Tensor& target,
                                            const AttributionAttackOptions& options) {
  check_input(fn, "input", input);
  check_ball(fn, options.ball());
  check_in_clip_range(fn, "input", input, options.ball());
  check_ascent(fn, options.ascent(), "iterations");
  TORCH_CHECK(options.measure_every() >= 1, fn, ": measure_every must be >= 1, got ",
              options.measure_every());
  TORCH_CHECK(target.defined(), fn, ": target must be a defined int64 tensor of class indices");
  const int64_t n = input.size(0);
  AttackSetup setup;
  setup.target = expand_target(fn, target, n, input.device());
  setup.map_shape = map_sample_shape(input.sizes(), options.map());
  setup.features = 1;
  for (int64_t s : setup.map_shape) setup.features *= s;
  const torch::IntArrayRef map_shape(setup.map_shape);
  TORCH_CHECK(options.k() >= 1 && options.k() <= setup.features, fn, ": k must be in [1, ",
              setup.features, "] (the number of features of each saliency map, shape ",
              map_shape, "), got k = ", options.k());
  if (options.kind() == AttackKind::custom) {
    TORCH_CHECK(static_cast<bool>(options.objective()), fn,
                ": AttackKind::custom needs an objective, a callable (surrogate_map, "
                "original_map, iterate) -> one value per sample");
  }
  if (options.kind() == AttackKind::targeted) {
    const torch::Tensor& r = options.target_region();
    TORCH_CHECK(r.defined(), fn,
                ": the targeted attack needs target_region, a bool mask of the map's shape ",
                map_shape);
    TORCH_CHECK(r.scalar_type() == torch::kBool, fn, ": target_region must be a bool mask, got ",
                r.scalar_type());
    TORCH_CHECK(r.device() == input.device(), fn, ": target_region must be on the input's device ",
                input.device(), ", got ", r.device());
    std::vector<int64_t> batched = setup.map_shape;
    batched.insert(batched.begin(), n);
    TORCH_CHECK(r.sizes() == map_shape || r.sizes() == torch::IntArrayRef(batched), fn,
                ": target_region must have the map's shape ", map_shape, " or ",
                torch::IntArrayRef(batched), " (one mask per sample), got ", r.sizes());
    setup.region = r.to(input.scalar_type()).expand(batched).reshape({n, setup.features});
  }
  return setup;
}

/// The objective D of an attribution attack on M attacked samples: what the surrogate's map is
/// pushed toward, as one value per sample.
struct AttackObjectiveData {
  AttackKind kind = AttackKind::top_k;
  int64_t features = 0;
  torch::Tensor top_mask;      ///< top_k: `[M, features]`, 1 on the original top-k features
  torch::Tensor center0;       ///< mass_center: ⌊C₀⌋ `[M, k]`
  torch::Tensor region;        ///< targeted: `[M, features]`
  torch::Tensor original_map;  ///< custom: the real model's maps at the inputs `[M, ...]`
  AttackObjective custom;

  /// D per sample `[M]` for the surrogate's maps `map` at `iterate`.
  torch::Tensor operator()(const char* fn, const torch::Tensor& map,
                           const torch::Tensor& iterate) const {
    const int64_t m = map.size(0);
    switch (kind) {
      case AttackKind::mass_center:
        return (center_of_mass(map) - center0).pow(2).sum(1);
      case AttackKind::targeted:
        return (map.reshape({m, features}) * region).sum(1);
      case AttackKind::custom: {
        torch::Tensor value = custom(map, original_map, iterate);
        TORCH_CHECK(value.defined() && value.dim() == 1 && value.size(0) == m, fn,
                    ": the objective must return one value per attacked sample, shape [", m,
                    "], got ", value.defined() ? value.sizes() : torch::IntArrayRef{});
        return value;
      }
      case AttackKind::top_k:
      default:
        return -(map.reshape({m, features}) * top_mask).sum(1);
    }
  }
};

/// Prepares the objective of `options.kind()` for the attacked samples `x` (targets `t`,
/// original maps `map0`, target region rows `region`).
template <class Surrogate, class Method>
AttackObjectiveData attack_objective(const char* fn, Surrogate& surrogate, Method& method,
                                     const torch::Tensor& x, const torch::Tensor& t,
                                     const torch::Tensor& map0, const torch::Tensor& region,
                                     int64_t features, const AttributionAttackOptions& options) {
  AttackObjectiveData d;
  d.kind = options.kind();
  d.features = features;
  const int64_t m = x.size(0);
  switch (options.kind()) {
    case AttackKind::top_k: {
      const torch::Tensor top = std::get<1>(map0.reshape({m, features}).topk(options.k(), 1));
      d.top_mask = torch::zeros({m, features}, x.options()).scatter_(1, top, 1.0);
      break;
    }
    case AttackKind::mass_center: {
      // C₀ of the surrogate's map at x, rounded down as in the original code (which also gives
      // a nonzero first gradient).
      const torch::Tensor a0 = call_method(fn, method, surrogate, x, t, false, "surrogate");
      d.center0 =
          torch::nan_to_num(center_of_mass(attribution_map(a0, options.map())), 0.0, 0.0, 0.0)
              .floor()
              .detach();
      break;
    }
    case AttackKind::targeted:
      d.region = region;
      break;
    case AttackKind::custom:
      d.custom = options.objective();
      d.original_map = map0;
      break;
    case AttackKind::random_sign:
      break;
  }
  return d;
}

/// The ascent direction at `x_adv`: ∇ of Σ D through the surrogate's map (NaN gradients are
/// zeroed), with D per sample; Gaussian noise from `gen` for `random_sign`.
template <class Surrogate, class Method>
AscentDirection attack_direction(const char* fn, Surrogate& surrogate, Method& method,
                                 const torch::Tensor& x_adv, const torch::Tensor& t,
                                 const AttackObjectiveData& objective,
                                 const AttributionAttackOptions& options, at::Generator& gen) {
  if (options.kind() == AttackKind::random_sign) return {normal_like(gen, x_adv), {}};
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor xs = x_adv.detach().requires_grad_(true);
  const torch::Tensor a = call_method(fn, method, surrogate, xs, t, true, "surrogate");
  TORCH_CHECK(a.requires_grad(), fn,
              ": method(surrogate, x, target, /*create_graph=*/true) must return attributions "
              "differentiable w.r.t. x (pass create_graph on to the attribution method), got "
              "a tensor that does not require grad");
  const torch::Tensor value = objective(fn, attribution_map(a, options.map()), xs);
  torch::Tensor g = torch::autograd::grad({value.sum()}, {xs}, {}, false, false, true)[0];
  if (!g.defined()) return {torch::zeros_like(x_adv), value.detach()};
  return {torch::nan_to_num(g, 0.0, 0.0, 0.0), value.detach()};
}

/// The best iterate of each attacked sample and whether one beat the input.
struct AttackOutcome {
  torch::Tensor adversarial;  ///< `[M, ...]`
  torch::Tensor map;          ///< the real model's maps at `adversarial`
  torch::Tensor found;        ///< bool `[M]`, CPU
};

/// The attack loop on the M attacked samples `x` (targets `t`, original maps `map0`): the
/// projected ascent of `rar::projected_ascent` along `attack_direction`, with a callback that
/// measures the real model at the candidate iterates and keeps the best one per sample.
/// `report` receives every iterate too (already expanded to the whole batch by the caller).
template <class Model, class Surrogate, class Method>
AttackOutcome attack_loop(const char* fn, Model& model, Surrogate& surrogate, Method& method,
                          const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& map0,
                          const AttackObjectiveData& objective,
                          const AttributionAttackOptions& options, const AscentCallback& report) {
  const int64_t m = x.size(0);
  std::vector<int64_t> per_sample(static_cast<size_t>(x.dim()), 1);
  per_sample[0] = m;
  std::vector<int64_t> per_map(static_cast<size_t>(map0.dim()), 1);
  per_map[0] = m;
  const int64_t steps = options.iterations();

  // Everything random comes from the stream (seed, 0): the start, then one direction per step.
  at::Generator gen = seeded_generator(options.seed(), 0);
  torch::Tensor start = x;
  if (options.random_start()) {
    torch::NoGradGuard no_grad;
    start = random_start(gen, x, options.ball());
  }

  const double initial = options.measure() == AttackMeasure::center_of_mass_shift ? 0.0 : 1.0;
  torch::Tensor best = torch::full({m}, initial, torch::TensorOptions().dtype(torch::kDouble));
  torch::Tensor best_x = x;
  torch::Tensor best_map = map0;
  // Candidates: the measured iterates t ≥ 1 (every measure_every-th and the last), and the
  // random start.
  const AscentCallback measure = [&](int64_t it, const torch::Tensor& x_adv,
                                     const torch::Tensor&) {
    const bool candidate = it == 0 ? options.random_start()
                                   : (it % options.measure_every() == 0 || it == steps);
    if (!candidate) return;
    const torch::Tensor kept = (predict(fn, model, x_adv) == t).cpu();
    if (!kept.any().item<bool>()) return;
    const torch::Tensor map =
        attribution_map(call_method(fn, method, model, x_adv, t, false, "model"), options.map())
            .detach();
    const torch::Tensor crit = attack_criterion(options.measure(), map0, map, options.k());
    const torch::Tensor better = kept & (crit < best);  // NaN never counts as better
    if (!better.any().item<bool>()) return;
    best = torch::where(better, crit, best);
    const torch::Tensor b = better.to(x.device());
    best_x = torch::where(b.view(per_sample), x_adv, best_x);
    best_map = torch::where(b.view(per_map), map, best_map);
  };
  projected_ascent(
      x, start, options.ball(), options.ascent(),
      [&](const torch::Tensor& x_adv) {
        return attack_direction(fn, surrogate, method, x_adv, t, objective, options, gen);
      },
      chain_callbacks(measure, report));
  return {best_x.detach(), best_map.detach(), best < initial};
}

}  // namespace detail

namespace detail {

/// `rar::attribution_attack` with a surrogate model (the caller's, or the one an
/// `AutoSurrogate` chose).
template <class Model, class Surrogate, class Method>
AttackResult attribution_attack_with(Model&& model, Surrogate&& surrogate, Method&& method,
                                     const torch::Tensor& input, const torch::Tensor& target,
                                     const AttributionAttackOptions& options) {
  detail::static_check_model<Model>();
  detail::static_check_model<Surrogate>();
  static_assert(is_explainer_v<std::remove_reference_t<Method>, std::remove_reference_t<Model>>,
                "rar::attribution_attack: method must be an explainer callable as "
                "torch::Tensor(model, const torch::Tensor& input, const torch::Tensor& target, "
                "bool create_graph), e.g. rar::explain::integrated_gradients(opts)");
  static_assert(is_explainer_v<std::remove_reference_t<Method>,
                               std::remove_reference_t<Surrogate>>,
                "rar::attribution_attack: method must also be callable with the surrogate: "
                "torch::Tensor(surrogate, const torch::Tensor& input, const torch::Tensor& "
                "target, bool create_graph)");
  const char* fn = "rar::attribution_attack";
  const detail::AttackSetup setup = detail::check_attribution_attack(fn, input, target, options);
  const torch::Tensor& y = setup.target;
  const int64_t n = input.size(0);

  // The original maps, and which samples are attacked (those classified as their target).
  const torch::Tensor x0 = input.detach();
  const torch::Tensor original_map =
      attribution_map(detail::call_method(fn, method, model, x0, y, false, "model"), options.map())
          .detach();
  const torch::Tensor prediction = detail::predict(fn, model, x0);
  const bool ascends = options.kind() != AttackKind::random_sign && options.iterations() > 0;
  if (ascends) detail::check_surrogate_has_curvature(fn, model, surrogate, x0, y);
  const torch::Tensor idx = (prediction == y).nonzero().select(1, 0);
  const int64_t m = idx.size(0);
  // Whether the map's graph reaches the surrogate's weights decides in any dtype; float32
  // differences are too coarse near the kinks of max-pools to decide safely (false refusals
  // were seen on briefly trained CNNs), so the finite-difference check runs on float64 inputs.
  if (ascends && m > 0 && options.check_gradient()) {
    const torch::Tensor first = idx.slice(0, 0, 1);  // the checks use one attacked sample
    detail::check_map_graph_reaches_parameters(fn, surrogate, method, x0.index_select(0, first),
                                               y.index_select(0, first));
    if (input.scalar_type() == torch::kDouble)
      detail::check_map_gradient(fn, surrogate, method, x0.index_select(0, first),
                                 y.index_select(0, first), options.ball());
  }

  torch::Tensor adversarial = x0.clone();
  torch::Tensor adversarial_map = original_map.clone();
  torch::Tensor improved = torch::zeros({n}, torch::TensorOptions().dtype(torch::kBool));
  if (m > 0 && (options.iterations() > 0 || options.random_start())) {
    const bool all = m == n;
    const auto rows = [&](const torch::Tensor& t) { return all ? t : t.index_select(0, idx); };
    const torch::Tensor x = rows(x0);
    const torch::Tensor t = rows(y);
    const torch::Tensor map0 = rows(original_map);
    const detail::AttackObjectiveData objective = detail::attack_objective(
        fn, surrogate, method, x, t, map0,
        setup.region.defined() ? rows(setup.region) : setup.region, setup.features, options);
    // The user's callback sees the whole batch: samples that are not attacked stay at their
    // input, with a NaN objective.
    AscentCallback report;
    if (options.callback()) {
      report = [&](int64_t it, const torch::Tensor& x_adv, const torch::Tensor& value) {
        if (all) return options.callback()(it, x_adv, value);
        torch::Tensor whole = x0.clone().index_copy_(0, idx, x_adv);
        torch::Tensor whole_value = value;
        if (value.defined()) {
          whole_value = torch::full({n}, std::numeric_limits<double>::quiet_NaN(), value.options())
                            .index_copy_(0, idx.to(value.device()), value);
        }
        return options.callback()(it, whole, whole_value);
      };
    }
    const detail::AttackOutcome outcome = detail::attack_loop(
        fn, model, surrogate, method, x, t, map0, objective, options, report);
    if (all) {
      adversarial = outcome.adversarial.clone();
      adversarial_map = outcome.map.clone();
      improved = outcome.found;
    } else {
      adversarial.index_copy_(0, idx, outcome.adversarial);
      adversarial_map.index_copy_(0, idx, outcome.map);
      improved.index_copy_(0, idx.cpu(), outcome.found);
    }
  }

  AttackResult result;
  result.adversarial = adversarial;
  result.original_map = original_map;
  result.adversarial_map = adversarial_map;
  result.topk_intersection = topk_intersection(original_map, adversarial_map, options.k());
  result.kendall_tau = rar::kendall_tau(original_map, adversarial_map);
  result.prediction_kept = detail::predict(fn, model, adversarial) == y;
  result.improved = improved.to(input.device());
  result.surrogate_agreement = detail::predict(fn, surrogate, x0) == prediction;
  return result;
}

}  // namespace detail

/// Attacks the attributions of `model`: searches the ε-ball around each input for a point
/// whose saliency map differs most from the original while the prediction stays `target`.
///
/// The attack of Ghorbani, Abid, Zou ("Interpretation of Neural Networks is Fragile",
/// AAAI 2019) with the semantics of their code (amiratag/InterpretationFragility, `utils.py`)
/// and of Chen et al.'s evaluation (jfc43/robust-attribution-regularization,
/// `MNIST/ig_attack.py`, `eval_attribution_attack.py`). From x⁰ = x (or a random point of the
/// ball with `random_start`), for t = 1 … iterations, the projected ascent of
/// `rar::projected_ascent`:
///
///   x^t = Π_{N(x, ε) ∩ [clip_min, clip_max]}(x^{t−1} + α·sign(∇D(x^{t−1})))   (L∞)
///   x^t = Π_{N(x, ε) ∩ [clip_min, clip_max]}(x^{t−1} + α·∇D/‖∇D‖₂)            (L2, per sample)
///
/// with the gradient taken through the *surrogate*'s map m̃ = attribution_map(method(surrogate,
/// x, target, true)) (the same weights with smooth activations, see `rar::smooth_surrogate`):
/// - `top_k`: D = −Σ_{i∈K} m̃_i, K the k largest features of the original map (real model);
/// - `mass_center`: D = ‖C(m̃) − ⌊C₀⌋‖², C the center of mass in grid units and C₀ that of the
///   surrogate's map at x, rounded down as in the original code (which also gives a nonzero
///   first gradient);
/// - `targeted`: D = Σ_{i∈R} m̃_i over the `target_region` R;
/// - `custom`: D = `objective(m̃, original map, x^{t−1})` (see `rar::AttackObjective`);
/// - `random_sign`: the direction is Gaussian noise (seeded), i.e. random ±α steps — the
///   baseline of both papers' code; `.iterations(1).step_size(ε)` gives one x + ε·sign(noise).
///
/// After every step the *real* model is checked: an iterate counts only if the model still
/// predicts `target[n]`; among those, the one most dissimilar to the original map by `measure`
/// (default: lowest top-k intersection, computed on the real model's maps `method(model, x,
/// target, false)`) is kept. The result reports that iterate's IN (top-k intersection at k) and
/// Kendall's tau against the original map.
///
/// Honest bookkeeping, as in the original code: if no iterate keeps the label (or none beats
/// the input on the measure), the input itself is returned for that sample, with IN = 1 and
/// tau = 1 (`improved` = false, `prediction_kept` = true): the attack found nothing, and
/// averaging IN over such samples counts them as unbroken. Samples the model misclassifies to
/// begin with are not attacked (the original code skips them): `adversarial` = input,
/// `prediction_kept` = false; average IN/CO over `prediction_kept` to follow the papers.
///
/// All samples are attacked at once: per iteration one double-backward through the surrogate,
/// one forward and one attribution of the real model over the whole batch (the attributions of
/// the real model and of the surrogate are per-sample as long as the models treat samples
/// independently: use eval mode). `method` receives `create_graph` = true for the surrogate
/// and false for the real model, so it may use fewer steps for the gradient than for the
/// measure. The models' modes, parameters and `.grad` are left untouched.
///
/// Example:
/// @code
/// net->eval();
/// auto smooth = rar::smooth_surrogate(net, /*beta=*/10.0);
/// auto ig = [](auto& m, const torch::Tensor& x, const torch::Tensor& y, bool create_graph) {
///   return rar::integrated_gradients(
///       m, x, rar::IGOptions().target(y).steps(create_graph ? 20 : 100)
///                 .method(rar::Quadrature::riemann_right).create_graph(create_graph));
/// };
/// rar::AttackResult r = rar::attribution_attack(
///     net, smooth, ig, x, y, rar::AttributionAttackOptions().k(100).epsilon(0.1));
/// torch::Tensor kept = r.prediction_kept.cpu();
/// double in = r.topk_intersection.index({kept}).mean().item<double>();
/// double co = r.kendall_tau.index({kept}).mean().item<double>();
/// @endcode
/// @param model the real network, logits `[N, C]`: labels and the reported maps come from it
/// @param surrogate the smooth network whose map is differentiated (may be `model` itself if
///        its activations are smooth), or `rar::auto_surrogate()`: the attack then chooses
///        β by class and map agreement on `input` (`rar::choose_surrogate_beta`) and reports it,
///        or, for a model with nothing to smooth (GELU, SiLU, ... only), uses the model itself
///        (`surrogate_beta` = +∞)
/// @param method an explainer `(net, input, target, bool create_graph) -> attributions` of the
///        input's shape (e.g. `rar::explain::integrated_gradients(opts)`), called through
///        `rar::detail::call_explainer` with `model` and with `surrogate`; with create_graph =
///        true the result must be differentiable w.r.t. the input.
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param target int64 classes `[N]` (or 0-dim) on the input's device: the class explained and
///        the prediction that must be kept
/// @param options kind, k, the ball (epsilon, norm, clip range), the ascent (iterations,
///        step_size, random_start, seed), target_region, objective, map, measure,
///        measure_every, callback
/// @return the chosen iterates, both maps, their IN and Kendall's tau, and per-sample flags
template <class Model, class Surrogate, class Method>
AttackResult attribution_attack(Model&& model, Surrogate&& surrogate, Method&& method,
                                const torch::Tensor& input, const torch::Tensor& target,
                                const AttributionAttackOptions& options = {}) {
  if constexpr (detail::is_auto_surrogate_v<Surrogate>) {
    detail::static_check_model<Model>();
    const char* fn = "rar::attribution_attack";
    // The attack's checks first (its errors, its target per sample); then class and map
    // agreement, the maps compared as the attack compares them.
    const detail::AttackSetup setup = detail::check_attribution_attack(fn, input, target, options);
    if (detail::is_smooth_model(model, input)) {
      // Nothing to smooth: the model is its own surrogate (the curvature check still runs, so
      // a forward with a hidden torch::relu is refused rather than attacked weakly).
      AttackResult result = detail::attribution_attack_with(model, model, method, input, target, options);
      result.surrogate_beta = std::numeric_limits<double>::infinity();
      return result;
    }
    const SurrogateBetaChoice choice = choose_surrogate_beta(
        model, method, input, setup.target,
        SurrogateBetaOptions(surrogate.options).k(options.k()).map(options.map()));
    auto smooth = smooth_surrogate(model, choice.beta);
    AttackResult result = detail::attribution_attack_with(model, smooth, method, input, target, options);
    result.surrogate_beta = choice.beta;
    return result;
  } else {
    return detail::attribution_attack_with(std::forward<Model>(model),
                                           std::forward<Surrogate>(surrogate),
                                           std::forward<Method>(method), input, target, options);
  }
}

}  // namespace rar
