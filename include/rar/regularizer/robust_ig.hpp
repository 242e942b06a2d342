#pragma once
/// @file
/// The RAR objectives of Chen, Wu, Rastogi, Liang, Jha, "Robust Attribution Regularization"
/// (NeurIPS 2019, arXiv 1905.09957): IG-NORM, IG-SUM-NORM and the weak size function sum().

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <memory>
#include <rar/attack/ball.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/random.hpp>
#include <rar/regularizer/term.hpp>
#include <vector>

namespace rar {

/// What the inner maximization found, for logging (set `diagnostics` in the options).
///
/// Example:
/// @code
/// auto diagnostics = std::make_shared<rar::InnerMaxDiagnostics>();
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().diagnostics(diagnostics));
/// objective(model, x, y).backward();
/// std::cout << diagnostics->objective.front() << " -> " << diagnostics->objective.back() << "\n";
/// @endcode
struct InnerMaxDiagnostics {
  /// The maximizer x′ of the last call, detached, `[N, ...]`.
  torch::Tensor adversarial;
  /// Mean inner objective over the batch at the start and after each ascent step.
  std::vector<double> objective;
};

// The fields shared by IGNormOptions and IGSumNormOptions (each struct declares them itself,
// so that chained setters return the right type).
#define RAR_ROBUST_IG_FIELDS                                                               \
  /** Radius ε of the perturbation ball N(x, ε). */                                      \
  RAR_ARG(double, epsilon) = 0.3;                                                          \
  /** Norm of the ball. */                                                                 \
  RAR_ARG(Norm, norm) = Norm::linf;                                                        \
  /** IG points m on the path x → x′ (right Riemann, α_k = k/m, k = 1..m). */         \
  RAR_ARG(int64_t, steps) = 50;                                                            \
  /** The inner maximization uses every inner_stride-th point (k = s, 2s, ..). */          \
  RAR_ARG(int64_t, inner_stride) = 5;                                                      \
  /** Projected ascent steps of the inner maximization. */                                 \
  RAR_ARG(int64_t, attack_steps) = 40;                                                     \
  /** Size of each ascent step. */                                                         \
  RAR_ARG(double, attack_step_size) = 0.01;                                                \
  /** Start the ascent at a uniform random point of the ball (else at x). */               \
  RAR_ARG(bool, random_start) = true;                                                      \
  /** The start of the ascent as a function of the batch x (x's shape; projected onto the  \
      ball and range). Set, it replaces random_start and draws nothing from the seed. */   \
  RAR_ARG(std::function<torch::Tensor(const torch::Tensor&)>, start);                      \
  /** Lower end of the data range. */                                                      \
  RAR_ARG(double, clip_min) = 0.0;                                                         \
  /** Upper end of the data range. */                                                      \
  RAR_ARG(double, clip_max) = 1.0;                                                         \
  /** Mean (default) or sum (the paper's code) over the batch. */                          \
  RAR_ARG(Reduction, reduction) = Reduction::mean;                                         \
  /** Seed of the random starts; each call of the term draws new ones from this stream. */ \
  RAR_ARG(uint64_t, seed) = 0;                                                             \
  /** Where to record the inner maximization (null: nothing is recorded). */               \
  RAR_ARG(std::shared_ptr<InnerMaxDiagnostics>, diagnostics)

/// Options of `rar::ig_norm` (and `rar::ig_sum`). Defaults are the paper's MNIST settings.
///
/// Example (the paper's Fashion-MNIST settings):
/// @code
/// auto opts = rar::IGNormOptions().epsilon(0.1).attack_steps(20).lambda(1.0);
/// auto objective = rar::cross_entropy() + rar::ig_norm(opts);
/// @endcode
struct IGNormOptions {
  RAR_ROBUST_IG_FIELDS;
  /// Weight λ of the attribution term.
  RAR_ARG(double, lambda) = 1.0;
};

/// Options of `rar::ig_sum_norm`: the IG-NORM fields with β instead of λ.
///
/// Example:
/// @code
/// auto objective = rar::ig_sum_norm(rar::IGSumNormOptions().epsilon(0.3).beta(0.1));
/// @endcode
struct IGSumNormOptions {
  RAR_ROBUST_IG_FIELDS;
  /// Weight β of ‖IG‖₁ next to the loss at x′.
  RAR_ARG(double, beta) = 0.1;
};

#undef RAR_ROBUST_IG_FIELDS

namespace detail {

/// The size function s(·) applied to IG.
enum class SizeFunction {
  l1,  ///< ‖IG‖₁ — the strong instantiations
  sum  ///< Σ IG — the weak one (allows attributions to cancel)
};

/// The whole configuration of one robust-IG term, whichever public options it came from.
struct RobustIGConfig {
  const char* name;
  double epsilon;
  Norm norm;
  int64_t steps, inner_stride, attack_steps;
  double step_size;
  bool random_start;
  std::function<torch::Tensor(const torch::Tensor&)> start;  ///< empty: random_start decides
  double clip_min, clip_max;
  double weight;   ///< λ or β
  bool with_loss;  ///< add ℓ(x′) to the objective (IG-SUM-NORM)
  SizeFunction size;
  Reduction reduction;
  uint64_t seed;
  std::shared_ptr<InnerMaxDiagnostics> diagnostics;
};

template <class Options>
RobustIGConfig robust_ig_config(const char* name, const Options& o, double weight, bool with_loss,
                                SizeFunction size) {
  TORCH_CHECK(std::isfinite(o.epsilon()) && o.epsilon() >= 0, name,
              ": epsilon must be finite and >= 0, got ", o.epsilon());
  TORCH_CHECK(std::isfinite(weight) && weight >= 0, name, ": ", with_loss ? "beta" : "lambda",
              " must be finite and >= 0, got ", weight);
  TORCH_CHECK(o.steps() >= 1, name, ": steps must be >= 1, got ", o.steps());
  TORCH_CHECK(o.inner_stride() >= 1 && o.inner_stride() <= o.steps(), name,
              ": inner_stride must lie in [1, steps = ", o.steps(), "], got ", o.inner_stride());
  // The strided points k = s, 2s, .., m must end at x′ with weights summing to 1.
  TORCH_CHECK(o.steps() % o.inner_stride() == 0, name, ": inner_stride must divide steps, got ",
              "steps = ", o.steps(), " and inner_stride = ", o.inner_stride());
  TORCH_CHECK(o.attack_steps() >= 0, name, ": attack_steps must be >= 0, got ", o.attack_steps());
  TORCH_CHECK(o.attack_step_size() >= 0, name, ": attack_step_size must be >= 0, got ",
              o.attack_step_size());
  TORCH_CHECK(o.clip_min() <= o.clip_max(), name, ": clip_min must be <= clip_max, got ",
              o.clip_min(), " and ", o.clip_max());
  return {name,
          o.epsilon(),
          o.norm(),
          o.steps(),
          o.inner_stride(),
          o.attack_steps(),
          o.attack_step_size(),
          o.random_start(),
          o.start(),
          o.clip_min(),
          o.clip_max(),
          weight,
          with_loss,
          size,
          o.reduction(),
          o.seed(),
          o.diagnostics()};
}

/// Right-Riemann points k = stride, 2·stride, .. ≤ m of the m-point path, each weighted
/// stride/m: the official code's `IG_approx` (stride = 1 gives the full m-point rule).
inline QuadratureRule strided_right_riemann(int64_t steps, int64_t stride) {
  QuadratureRule rule;
  const double m = static_cast<double>(steps);
  for (int64_t k = stride; k <= steps; k += stride) {
    rule.alphas.push_back(static_cast<double>(k) / m);
    rule.weights.push_back(static_cast<double>(stride) / m);
  }
  return rule;
}

/// Per-sample objective at x′: weight·s(IG^{ℓ_y}(x, x′)) [+ ℓ(x′)], IG along x → x′.
/// The graph is kept (create_graph) so it can be differentiated w.r.t. x′ or the parameters.
template <class Model>
torch::Tensor robust_ig_objective(Model& model, const torch::Tensor& x, const torch::Tensor& x_adv,
                                  const torch::Tensor& y, const QuadratureRule& rule,
                                  const RobustIGConfig& c) {
  torch::Tensor path_scores;
  const torch::Tensor ig = integrated_gradients_expanded(
      model, x_adv, x, y, rule, 0, /*create_graph=*/true, score::cross_entropy, &path_scores);
  torch::Tensor objective =
      c.weight * (c.size == SizeFunction::l1 ? ig.abs() : ig).flatten(1).sum(1);
  if (c.with_loss) {
    const int64_t n = x.size(0);
    const int64_t m = static_cast<int64_t>(rule.alphas.size());
    // The path's last point is x′ itself when α_m = 1: reuse its forward pass.
    const torch::Tensor loss_adv = rule.alphas.back() == 1.0
                                       ? path_scores.slice(0, (m - 1) * n, m * n)
                                       : score::cross_entropy(call_model(model, x_adv), y);
    objective = objective + loss_adv;
  }
  return objective;
}

/// The inner maximization: projected ascent on the strided objective over N(x, ε) ∩ range.
/// Gradients are taken w.r.t. x′ only; nothing of its graph survives the call.
template <class Model>
torch::Tensor robust_ig_inner_max(Model& model, const torch::Tensor& x, const torch::Tensor& y,
                                  const RobustIGConfig& c, at::Generator& gen) {
  const QuadratureRule rule = strided_right_riemann(c.steps, c.inner_stride);
  const torch::Tensor anchor = x.detach();
  torch::Tensor start;
  if (c.start) {
    const torch::Tensor given = c.start(anchor);
    TORCH_CHECK(given.defined() && given.sizes() == anchor.sizes(), c.name,
                ": the start function must return a tensor of x's shape ", anchor.sizes(),
                ", got ", given.defined() ? given.sizes() : c10::IntArrayRef{});
    start = project(given.detach().to(anchor.options()), anchor, c.epsilon, c.norm, c.clip_min,
                    c.clip_max);
  } else {
    start = c.random_start ? random_start(gen, anchor, c.epsilon, c.norm, c.clip_min, c.clip_max)
                           : anchor;
  }
  std::vector<double>* trace = c.diagnostics ? &c.diagnostics->objective : nullptr;
  if (trace) trace->clear();
  const torch::Tensor x_adv = projected_ascent(
      anchor, start, c.attack_steps, c.step_size, c.epsilon, c.norm, c.clip_min, c.clip_max,
      [&](const torch::Tensor& point) {
        const torch::Tensor xa = point.detach().requires_grad_(true);
        const torch::Tensor objective = robust_ig_objective(model, anchor, xa, y, rule, c);
        if (trace) trace->push_back(objective.mean().template item<double>());
        return torch::autograd::grad({objective.sum()}, {xa})[0];
      });
  if (trace) {  // the objective at the final iterate, to close the trace
    const torch::Tensor xa = x_adv.detach().requires_grad_(true);
    trace->push_back(
        robust_ig_objective(model, anchor, xa, y, rule, c).mean().template item<double>());
  }
  if (c.diagnostics) c.diagnostics->adversarial = x_adv;
  return x_adv;
}

/// The term object behind ig_norm / ig_sum_norm / ig_sum: inner maximization, then the
/// objective at the maximizer with all m points, differentiated through (double backward).
class RobustIGTerm {
 public:
  explicit RobustIGTerm(RobustIGConfig config)
      : config_(std::move(config)), gen_(seeded_generator(config_.seed)) {}

  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& x, const torch::Tensor& y) const {
    check_labelled_batch(config_.name, x, y);
    torch::AutoGradMode grad_mode(true);
    at::Generator gen = gen_;  // shares the stream: every call draws new random starts
    const torch::Tensor x_adv = robust_ig_inner_max(model, x, y, config_, gen);
    const QuadratureRule full = strided_right_riemann(config_.steps, 1);
    return reduce(robust_ig_objective(model, x.detach(), x_adv, y, full, config_),
                  config_.reduction);
  }

 private:
  RobustIGConfig config_;
  at::Generator gen_;
};

}  // namespace detail

/// IG-NORM's regularizer: λ · max_{x′ ∈ N(x, ε)} ‖IG^{ℓ_y}(x, x′)‖₁ (Chen et al. 2019, eq. 4).
///
/// IG is taken of the cross-entropy loss ℓ_y along the straight path from x to x′ with m
/// right-Riemann points. The inner maximization runs `attack_steps` projected sign-ascent steps
/// (from a uniform random start) on the objective computed with every `inner_stride`-th point;
/// the term is then recomputed at the maximizer with all m points and is differentiable in the
/// parameters through the gradients (double backward). Add `rar::cross_entropy()` for the full
/// IG-NORM objective. Cost per call: attack_steps × (forward + double backward over
/// N·m/inner_stride inputs) + one forward + double backward over N·m inputs.
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().epsilon(0.1));
/// objective(model, x, y).backward();
/// @endcode
/// @param options ε, norm, m, inner stride, ascent steps and size, start, range, λ, reduction, seed
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto ig_norm(const IGNormOptions& options = {}) {
  return make_term(detail::RobustIGTerm(detail::robust_ig_config(
      "rar::ig_norm", options, options.lambda(), false, detail::SizeFunction::l1)));
}

/// IG-SUM-NORM: max_{x′ ∈ N(x, ε)} [ℓ(x′) + β ‖IG^{ℓ_y}(x, x′)‖₁] (Chen et al. 2019, eq. 5).
///
/// The whole objective (it already contains the loss at x′); inner maximization and cost as
/// for `rar::ig_norm`, with ℓ(x′) read off the path's last point (no extra forward pass).
///
/// Example:
/// @code
/// auto objective = rar::ig_sum_norm(rar::IGSumNormOptions().epsilon(0.3).beta(0.1));
/// @endcode
/// @param options as for `ig_norm`, with β
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto ig_sum_norm(const IGSumNormOptions& options = {}) {
  return make_term(detail::RobustIGTerm(detail::robust_ig_config(
      "rar::ig_sum_norm", options, options.beta(), true, detail::SizeFunction::l1)));
}

/// The weak instantiation with size function sum(): λ · max_{x′} Σ IG^{ℓ_y}(x, x′).
///
/// By completeness Σ IG ≈ ℓ(x′) − ℓ(x), so `cross_entropy() + ig_sum(λ = 1)` is Madry et al.'s
/// robust-prediction objective in the paper's terms; attributions may cancel inside the sum,
/// which is why it is weak for attribution robustness.
///
/// Example:
/// @code
/// auto madry_like = rar::cross_entropy() + rar::ig_sum(rar::IGNormOptions().lambda(1.0));
/// @endcode
/// @param options as for `ig_norm`
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto ig_sum(const IGNormOptions& options = {}) {
  return make_term(detail::RobustIGTerm(detail::robust_ig_config(
      "rar::ig_sum", options, options.lambda(), false, detail::SizeFunction::sum)));
}

}  // namespace rar
