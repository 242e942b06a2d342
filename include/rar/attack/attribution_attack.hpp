#pragma once
/// @file
/// Attacks on attributions (Ghorbani, Abid, Zou, "Interpretation of Neural Networks is
/// Fragile", AAAI 2019), as used by Chen et al. ("Robust Attribution Regularization",
/// NeurIPS 2019) to measure attribution robustness (IN: top-k intersection, CO: Kendall's tau).

#include <rar/attack/ball.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/detail/model.hpp>
#include <rar/detail/random.hpp>
#include <rar/metrics/metrics.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
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
  random_sign
};

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
  center_of_mass_shift
};

/// Options for `rar::attribution_attack`.
///
/// The defaults are the MNIST evaluation of Chen et al. (NeurIPS 2019): top-k attack with
/// k = 200, ε = 0.3, 100 iterations of 0.01, pixels in [0, 1].
///
/// Example:
/// @code
/// auto opts = rar::AttributionAttackOptions().k(100).epsilon(0.1).iterations(100);
/// // Pull the map into the left half of 28×28 maps:
/// torch::Tensor left = torch::zeros({28, 28}, torch::kBool);
/// left.slice(1, 0, 14).fill_(true);
/// auto targeted = rar::AttributionAttackOptions().kind(rar::AttackKind::targeted)
///                     .target_region(left);
/// @endcode
struct AttributionAttackOptions {
  /// Which attack.
  RAR_ARG(AttackKind, kind) = AttackKind::top_k;
  /// Number of top features: the features whose mass `top_k` lowers and those compared by the
  /// reported top-k intersection (1 ≤ k ≤ number of map features per sample).
  RAR_ARG(int64_t, k) = 200;
  /// Radius ε ≥ 0 of the L∞ ball around each input.
  RAR_ARG(double, epsilon) = 0.3;
  /// Length α ≥ 0 of each sign step.
  RAR_ARG(double, step_size) = 0.01;
  /// Number of iterations (≥ 0; 0 returns the inputs).
  RAR_ARG(int64_t, iterations) = 100;
  /// Lower end of the valid input range.
  RAR_ARG(double, clip_min) = 0.0;
  /// Upper end of the valid input range (≥ clip_min).
  RAR_ARG(double, clip_max) = 1.0;
  /// For `targeted`: a bool mask of the map's shape per sample (`[H, W]` for images with the
  /// default map options), or one mask per sample `[N, H, W]`, on the input's device. Ignored
  /// by the other kinds.
  RAR_ARG(torch::Tensor, target_region);
  /// Seed of the `random_sign` directions (the other kinds are deterministic).
  RAR_ARG(uint64_t, seed) = 0;
  /// How attributions become saliency maps (see `rar::attribution_map`).
  RAR_ARG(MapOptions, map) = MapOptions();
  /// Which measure picks the returned iterate.
  RAR_ARG(AttackMeasure, measure) = AttackMeasure::topk_intersection;
  /// Measure the real model's label and map every `measure_every` iterations (and after the
  /// last one); the best iterate is chosen among the measured ones. 1 (default) measures every
  /// iterate, as the official code does; larger values trade a little attack strength for
  /// speed when the measured map is expensive (e.g. IG with many steps).
  RAR_ARG(int64_t, measure_every) = 1;
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
};

namespace detail {

/// The shape of one sample's saliency map for inputs of shape `input_sizes`.
inline std::vector<int64_t> map_sample_shape(torch::IntArrayRef input_sizes,
                                             const MapOptions& map) {
  std::vector<int64_t> shape(input_sizes.begin() + 1, input_sizes.end());
  if (map.sum_channels() && input_sizes.size() >= 3) shape.erase(shape.begin());
  return shape;
}

/// Calls the attribution method and checks that it returned attributions of x's shape.
template <class Net, class Method>
torch::Tensor call_method(const char* fn, Method& method, Net& net, const torch::Tensor& x,
                          const torch::Tensor& target, bool create_graph, const char* which) {
  torch::Tensor a = method(net, x, target, create_graph);
  TORCH_CHECK(a.defined() && a.sizes() == x.sizes(), fn, ": method(", which,
              ", x, target, create_graph) must return attributions of the input's shape ",
              x.sizes(), ", got ", a.defined() ? a.sizes() : torch::IntArrayRef{});
  return a;
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
    case AttackMeasure::topk_intersection:
    default:
      return rar::topk_intersection(original, current, k);
  }
}

}  // namespace detail

/// Attacks the attributions of `model`: searches the L∞ ε-ball around each input for a point
/// whose saliency map differs most from the original while the prediction stays `target`.
///
/// The attack of Ghorbani, Abid, Zou ("Interpretation of Neural Networks is Fragile",
/// AAAI 2019) with the semantics of their code (amiratag/InterpretationFragility, `utils.py`)
/// and of Chen et al.'s evaluation (jfc43/robust-attribution-regularization,
/// `MNIST/ig_attack.py`, `eval_attribution_attack.py`). From x⁰ = x, for t = 1 … iterations:
///
///   x^t = Π_{N(x, ε) ∩ [clip_min, clip_max]}(x^{t−1} + α·sign(∇D(x^{t−1})))
///
/// with the gradient taken through the *surrogate*'s map m̃ = attribution_map(method(surrogate,
/// x, target, true)) (the same weights with smooth activations, see `rar::softplus_surrogate`):
/// - `top_k`: D = −Σ_{i∈K} m̃_i, K the k largest features of the original map (real model);
/// - `mass_center`: D = ‖C(m̃) − ⌊C₀⌋‖², C the center of mass in grid units and C₀ that of the
///   surrogate's map at x, rounded down as in the original code (which also gives a nonzero
///   first gradient);
/// - `targeted`: D = Σ_{i∈R} m̃_i over the `target_region` R;
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
/// torch::nn::Sequential smooth = rar::softplus_surrogate(net, /*beta=*/10.0);
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
///        its activations are smooth)
/// @param method callable `(net, input, target, bool create_graph) -> attributions` of the
///        input's shape, called with `model` and with `surrogate`; with create_graph = true
///        the result must be differentiable w.r.t. the input
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param target int64 classes `[N]` (or 0-dim) on the input's device: the class explained and
///        the prediction that must be kept
/// @param options kind, k, epsilon, step_size, iterations, clip range, target_region, seed,
///        map, measure
/// @return the chosen iterates, both maps, their IN and Kendall's tau, and per-sample flags
template <class Model, class Surrogate, class Method>
AttackResult attribution_attack(Model&& model, Surrogate&& surrogate, Method&& method,
                                const torch::Tensor& input, const torch::Tensor& target,
                                const AttributionAttackOptions& options = {}) {
  detail::static_check_model<Model>();
  detail::static_check_model<Surrogate>();
  static_assert(std::is_invocable_r_v<torch::Tensor, Method&, std::remove_reference_t<Model>&,
                                      const torch::Tensor&, const torch::Tensor&, bool>,
                "rar::attribution_attack: method must be callable as torch::Tensor(model, const "
                "torch::Tensor& input, const torch::Tensor& target, bool create_graph)");
  static_assert(std::is_invocable_r_v<torch::Tensor, Method&, std::remove_reference_t<Surrogate>&,
                                      const torch::Tensor&, const torch::Tensor&, bool>,
                "rar::attribution_attack: method must also be callable with the surrogate: "
                "torch::Tensor(surrogate, const torch::Tensor& input, const torch::Tensor& "
                "target, bool create_graph)");
  const char* fn = "rar::attribution_attack";

  // ---- validation --------------------------------------------------------------------------
  detail::check_batch(fn, "input", input);
  TORCH_CHECK(std::isfinite(options.epsilon()) && options.epsilon() >= 0, fn,
              ": epsilon must be >= 0, got ", options.epsilon());
  TORCH_CHECK(std::isfinite(options.step_size()) && options.step_size() >= 0, fn,
              ": step_size must be >= 0, got ", options.step_size());
  TORCH_CHECK(options.iterations() >= 0, fn, ": iterations must be >= 0, got ",
              options.iterations());
  TORCH_CHECK(options.measure_every() >= 1, fn, ": measure_every must be >= 1, got ",
              options.measure_every());
  TORCH_CHECK(options.clip_min() <= options.clip_max(), fn,
              ": clip_min must be <= clip_max, got clip_min = ", options.clip_min(),
              " and clip_max = ", options.clip_max());
  TORCH_CHECK(target.defined(), fn, ": target must be a defined int64 tensor of class indices");
  const int64_t n = input.size(0);
  const torch::Tensor y = detail::expand_target(fn, target, n, input.device());
  const std::vector<int64_t> map_shape = detail::map_sample_shape(input.sizes(), options.map());
  int64_t features = 1;
  for (int64_t s : map_shape) features *= s;
  TORCH_CHECK(options.k() >= 1 && options.k() <= features, fn, ": k must be in [1, ", features,
              "] (the number of features of each saliency map, shape ",
              torch::IntArrayRef(map_shape), "), got k = ", options.k());
  torch::Tensor region;  // [N, D] in the input's dtype, for `targeted`
  if (options.kind() == AttackKind::targeted) {
    const torch::Tensor& r = options.target_region();
    TORCH_CHECK(r.defined(), fn,
                ": the targeted attack needs target_region, a bool mask of the map's shape ",
                torch::IntArrayRef(map_shape));
    TORCH_CHECK(r.scalar_type() == torch::kBool, fn, ": target_region must be a bool mask, got ",
                r.scalar_type());
    TORCH_CHECK(r.device() == input.device(), fn, ": target_region must be on the input's device ",
                input.device(), ", got ", r.device());
    std::vector<int64_t> batched = map_shape;
    batched.insert(batched.begin(), n);
    TORCH_CHECK(
        r.sizes() == torch::IntArrayRef(map_shape) || r.sizes() == torch::IntArrayRef(batched), fn,
        ": target_region must have the map's shape ", torch::IntArrayRef(map_shape), " or ",
        torch::IntArrayRef(batched), " (one mask per sample), got ", r.sizes());
    region = r.to(input.scalar_type()).expand(batched).reshape({n, features});
  }

  // ---- the original maps and which samples are attacked -----------------------------------
  const torch::Tensor x0 = input.detach();
  const torch::Tensor original_map =
      attribution_map(detail::call_method(fn, method, model, x0, y, false, "model"), options.map())
          .detach();
  const torch::Tensor correct = detail::predict(fn, model, x0) == y;
  const torch::Tensor idx = correct.nonzero().select(1, 0);
  const int64_t m = idx.size(0);

  torch::Tensor adversarial = x0.clone();
  torch::Tensor adversarial_map = original_map.clone();
  torch::Tensor improved = torch::zeros({n}, torch::TensorOptions().dtype(torch::kBool));

  if (m > 0 && options.iterations() > 0) {
    const bool all = m == n;
    const torch::Tensor x = all ? x0 : x0.index_select(0, idx);
    const torch::Tensor t = all ? y : y.index_select(0, idx);
    const torch::Tensor map0 = all ? original_map : original_map.index_select(0, idx);
    std::vector<int64_t> per_sample(static_cast<size_t>(x.dim()), 1);
    per_sample[0] = m;
    std::vector<int64_t> per_map(static_cast<size_t>(map0.dim()), 1);
    per_map[0] = m;

    // What the surrogate's map is pushed toward.
    torch::Tensor top_mask, center0, sub_region;
    if (options.kind() == AttackKind::top_k) {
      const torch::Tensor top = std::get<1>(map0.reshape({m, features}).topk(options.k(), 1));
      top_mask = torch::zeros({m, features}, x.options()).scatter_(1, top, 1.0);
    } else if (options.kind() == AttackKind::mass_center) {
      torch::Tensor a0 = detail::call_method(fn, method, surrogate, x, t, false, "surrogate");
      center0 = torch::nan_to_num(center_of_mass(attribution_map(a0, options.map())), 0.0, 0.0, 0.0)
                    .floor()
                    .detach();
    } else if (options.kind() == AttackKind::targeted) {
      sub_region = all ? region : region.index_select(0, idx);
    }

    // The sign direction at x_adv (ascent on the attack objective).
    at::Generator gen = detail::seeded_generator(options.seed());
    auto direction = [&](const torch::Tensor& x_adv) -> torch::Tensor {
      if (options.kind() == AttackKind::random_sign) return detail::normal_like(gen, x_adv);
      torch::AutoGradMode grad_mode(true);
      const torch::Tensor xs = x_adv.detach().requires_grad_(true);
      const torch::Tensor a = detail::call_method(fn, method, surrogate, xs, t, true, "surrogate");
      TORCH_CHECK(a.requires_grad(), fn,
                  ": method(surrogate, x, target, /*create_graph=*/true) must return attributions "
                  "differentiable w.r.t. x (pass create_graph on to the attribution method), got "
                  "a tensor that does not require grad");
      const torch::Tensor map = attribution_map(a, options.map());
      torch::Tensor objective;
      switch (options.kind()) {
        case AttackKind::mass_center:
          objective = (center_of_mass(map) - center0).pow(2).sum();
          break;
        case AttackKind::targeted:
          objective = (map.reshape({m, features}) * sub_region).sum();
          break;
        case AttackKind::top_k:
        default:
          objective = -(map.reshape({m, features}) * top_mask).sum();
          break;
      }
      torch::Tensor g = torch::autograd::grad({objective}, {xs}, {}, false, false, true)[0];
      if (!g.defined()) return torch::zeros_like(x_adv);
      return torch::nan_to_num(g, 0.0, 0.0, 0.0);
    };

    const double initial = options.measure() == AttackMeasure::center_of_mass_shift ? 0.0 : 1.0;
    torch::Tensor best = torch::full({m}, initial, torch::TensorOptions().dtype(torch::kDouble));
    torch::Tensor best_x = x;
    torch::Tensor best_map = map0;
    torch::Tensor x_adv = x;
    for (int64_t it = 0; it < options.iterations(); ++it) {
      const torch::Tensor d = direction(x_adv);
      {
        torch::NoGradGuard no_grad;
        x_adv =
            detail::project(detail::ascent_step(x_adv, d, options.step_size(), Norm::linf), x,
                            options.epsilon(), Norm::linf, options.clip_min(), options.clip_max());
      }
      const bool last = it + 1 == options.iterations();
      if (!last && (it + 1) % options.measure_every() != 0) continue;
      const torch::Tensor kept = (detail::predict(fn, model, x_adv) == t).cpu();
      if (!kept.any().item<bool>()) continue;
      const torch::Tensor map =
          attribution_map(detail::call_method(fn, method, model, x_adv, t, false, "model"),
                          options.map())
              .detach();
      const torch::Tensor crit =
          detail::attack_criterion(options.measure(), map0, map, options.k());
      const torch::Tensor better = kept & (crit < best);  // NaN never counts as better
      if (!better.any().item<bool>()) continue;
      best = torch::where(better, crit, best);
      const torch::Tensor b = better.to(x.device());
      best_x = torch::where(b.view(per_sample), x_adv, best_x);
      best_map = torch::where(b.view(per_map), map, best_map);
    }
    const torch::Tensor found = best < initial;
    if (all) {
      adversarial = best_x.detach().clone();
      adversarial_map = best_map.detach().clone();
      improved = found;
    } else {
      adversarial.index_copy_(0, idx, best_x.detach());
      adversarial_map.index_copy_(0, idx, best_map.detach());
      improved.index_copy_(0, idx.cpu(), found);
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
  return result;
}

}  // namespace rar
