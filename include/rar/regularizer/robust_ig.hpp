#pragma once
/// @file
/// The RAR objectives of Chen, Wu, Rastogi, Liang, Jha, "Robust Attribution Regularization"
/// (NeurIPS 2019, arXiv 1905.09957): IG-NORM, IG-SUM-NORM and the weak size function sum(),
/// with IG at the input or, for a `rar::Split` model, at a hidden layer (IG_h).

#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/core/threat_model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/nn/model.hpp>
#include <rar/regularizer/chunked.hpp>
#include <rar/regularizer/layer_rar.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace rar {

/// What the inner maximization of a robust-IG term climbs (`IGNormOptions::inner_objective`).
enum class InnerObjective {
  full,  ///< the term's own objective: λ‖IG‖₁, or ℓ(x′) + β‖IG‖₁ (the paper's)
  loss   ///< the loss ℓ(x′) alone: first-order projected ascent, as Madry's PGD
};

// The fields shared by IGNormOptions and IGSumNormOptions (each struct declares them itself,
// so that chained setters return the right type).
#define RAR_ROBUST_IG_FIELDS                                                               \
  /** The ball N(x, ε) ∩ [clip_min, clip_max] of the inner maximization (defaults: ε = 0.3, \
      L∞, [0, 1]). */                                                                      \
  RAR_ARG(BallOptions, ball) = BallOptions();                                              \
  /** The inner maximization's ascent (defaults: 40 steps of 0.01 from a random start,     \
      seed 0). */                                                                          \
  RAR_ARG(AscentOptions, ascent) = AscentOptions();                                        \
  /** Radius ε of the perturbation ball N(x, ε): `ball().epsilon()`. */                    \
  RAR_ARG_ALIAS(double, ball, epsilon, epsilon);                                           \
  /** Norm of the ball: `ball().norm()`. */                                                \
  RAR_ARG_ALIAS(Norm, ball, norm, norm);                                                   \
  /** Lower end of the data range: `ball().clip_min()`. */                                 \
  RAR_ARG_ALIAS(double, ball, clip_min, clip_min);                                         \
  /** Upper end of the data range: `ball().clip_max()`. */                                 \
  RAR_ARG_ALIAS(double, ball, clip_max, clip_max);                                         \
  /** Projected ascent steps of the inner maximization: `ascent().steps()`. */             \
  RAR_ARG_ALIAS(int64_t, ascent, attack_steps, steps);                                     \
  /** Size of each ascent step: `ascent().step_size()`. */                                 \
  RAR_ARG_ALIAS(double, ascent, attack_step_size, step_size);                              \
  /** Start the ascent at a uniform random point of the ball (else at x):                  \
      `ascent().random_start()`. */                                                        \
  RAR_ARG_ALIAS(bool, ascent, random_start, random_start);                                 \
  /** Seed of the random starts: call i of the term draws from the stream (seed, i)        \
      (`ascent().seed()`). */                                                              \
  RAR_ARG_ALIAS(uint64_t, ascent, seed, seed);                                             \
  /** IG points m on the path x → x′ (right Riemann, α_k = k/m, k = 1..m, by default). */ \
  RAR_ARG(int64_t, steps) = 50;                                                            \
  /** The inner maximization uses every inner_stride-th point (k = s, 2s, ..); with another \
      `quadrature` it uses that rule with m / inner_stride points. */                      \
  RAR_ARG(int64_t, inner_stride) = 5;                                                      \
  /** The rule of the m IG points (default: right Riemann, the paper's). Gauss-Legendre    \
      with m points integrates a polynomial path of degree 2m - 1 exactly, where right     \
      Riemann's error is O(1/m); as a training lever it did not pay on the examples' CNN   \
      (docs/methods.md, "Cheaper robust training"). */                                     \
  RAR_ARG(Quadrature, quadrature) = Quadrature::riemann_right;                             \
  /** What the inner ascent climbs: the term's own objective (`full`, default: a double     \
      backward per step) or the loss ℓ(x′) alone (`loss`: first order, as PGD; for IG-NORM  \
      Σ IG = ℓ(x′) − ℓ(x) ≤ ‖IG‖₁, a lower bound that the paper's one-layer theorem makes   \
      tight). A cheaper-training lever. */                                                  \
  RAR_ARG(InnerObjective, inner_objective) = InnerObjective::full;                         \
  /** The attribution penalty on every k-th call only, weighted k (unbiased over k calls):   \
      on the other calls IG-NORM and ig_sum return 0 without any work, and IG-SUM-NORM       \
      returns max ℓ(x′) (Madry's objective, inner ascent on the loss). 1 (default): every   \
      call. Which calls: those whose index (`first_call` + calls so far) is a multiple of k. \
      A cheaper-training lever. */                                                          \
  RAR_ARG(int64_t, penalty_every) = 1;                                                     \
  /** The index of the term's first call (default 0): call i of the term draws its random   \
      start from the stream (seed, first_call + i), and `penalty_every` counts from it. A    \
      loop that builds the term anew each step passes the step here. */                     \
  RAR_ARG(uint64_t, first_call) = 0;                                                       \
  /** The start of the ascent as a function of the batch x (x's shape; projected onto the  \
      ball and range). Set, it replaces random_start and draws nothing from the seed. */   \
  RAR_ARG(std::function<torch::Tensor(const torch::Tensor&)>, start);                      \
  /** Rows (samples × IG points) whose double-backward graph is held at once; 0 (default) =  \
      no limit, fastest. Set, the inner gradients and the final objective run over chunks  \
      of max(1, max_rows / points) samples, and the parameter gradients of the final       \
      objective are computed inside the call, chunk by chunk, and attached to the returned  \
      loss (exact; differentiable w.r.t. the parameters only, first order; the model must   \
      be a module or a rar::Split of modules). Peak memory then grows with max_rows instead \
      of N·m. */                                                                            \
  RAR_ARG(int64_t, max_rows) = 0;                                                          \
  /** Mean (default) or sum (the paper's code) over the batch. */                          \
  RAR_ARG(Reduction, reduction) = Reduction::mean;                                         \
  /** Where to record the inner maximization (null: nothing is recorded). */               \
  RAR_ARG(std::shared_ptr<InnerMaxDiagnostics>, diagnostics);                              \
  /** Called with every iterate of the inner maximization and its per-sample objective     \
      (see `rar::AscentCallback`); returning true ends the ascent early. */                \
  RAR_ARG(AscentCallback, callback)

/// Options of `rar::ig_norm` (and `rar::ig_sum`). Defaults are the paper's MNIST settings.
///
/// The threat model is two blocks, `ball` (epsilon, norm, clip_min, clip_max) and `ascent`
/// (attack_steps, attack_step_size, random_start, seed); the flat setters forward to them
/// (`IGNormOptions().attack_steps(5)` sets `ascent().steps()`). `steps` is the number of IG
/// points, not of ascent steps.
///
/// Example (the paper's Fashion-MNIST settings):
/// @code
/// auto opts = rar::IGNormOptions().epsilon(0.1).attack_steps(20).lambda(1.0);
/// auto objective = rar::cross_entropy() + rar::ig_norm(opts);
/// // The threat model of a PGD evaluation, reused:
/// auto same = rar::IGNormOptions().ball(pgd_options.ball()).ascent(pgd_options.ascent());
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

 public:
  /// The cheaper-training recipe at radius `epsilon` (L∞): the levers that moved the
  /// robustness-per-second frontier on Fashion-MNIST (docs/methods.md, "Cheaper robust
  /// training"). The inner maximization climbs the loss alone (`InnerObjective::loss`, first
  /// order) with `kFastInnerSteps` steps of `kFastStepFraction`·ε from a random start, the
  /// objective at the maximizer takes IG with `kFastPoints` right-Riemann point(s), and the
  /// attribution penalty comes on every `kFastPenaltyEvery`-th call, weighted as many (the calls
  /// between are Madry's objective). β, the range, the seed and every other field keep their
  /// defaults and can be set as usual; a loop that builds the term anew each step passes the
  /// step as `first_call`. It is a short-budget recipe: on the examples' Fashion-MNIST CNN its
  /// maps stay robust for a few minutes of CPU training, then their top-k intersection under
  /// attack collapses while accuracy keeps rising (docs/methods.md, "The frontier").
  ///
  /// Example:
  /// @code
  /// auto objective = rar::ig_sum_norm(rar::IGSumNormOptions::fast(0.1).beta(0.1));
  /// @endcode
  /// @param epsilon the radius ε of the L∞ ball (≥ 0)
  /// @return the options of the recipe
  static IGSumNormOptions fast(double epsilon) {
    TORCH_CHECK(std::isfinite(epsilon) && epsilon >= 0,
                "rar::IGSumNormOptions::fast: epsilon must be finite and >= 0, got ", epsilon);
    return IGSumNormOptions()
        .epsilon(epsilon)
        .steps(kFastPoints)
        .inner_stride(kFastPoints)
        .quadrature(kFastQuadrature)
        .inner_objective(InnerObjective::loss)
        .attack_steps(kFastInnerSteps)
        .attack_step_size(kFastStepFraction * epsilon)
        .random_start(true)
        .penalty_every(kFastPenaltyEvery);
  }
  /// IG points of `fast()` at the maximizer.
  static constexpr int64_t kFastPoints = 1;
  /// Their rule.
  static constexpr Quadrature kFastQuadrature = Quadrature::riemann_right;
  /// Inner ascent steps of `fast()`.
  static constexpr int64_t kFastInnerSteps = 3;
  /// Their size as a fraction of ε.
  static constexpr double kFastStepFraction = 0.4;
  /// The attribution penalty on every this many calls, weighted as many (`penalty_every`).
  static constexpr int64_t kFastPenaltyEvery = 4;
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
  BallOptions ball;
  AscentOptions ascent;
  int64_t steps, inner_stride;
  std::function<torch::Tensor(const torch::Tensor&)> start;  ///< empty: random_start decides
  double weight;   ///< λ or β
  bool with_loss;  ///< add ℓ(x′) to the objective (IG-SUM-NORM)
  SizeFunction size;
  Reduction reduction;
  std::shared_ptr<InnerMaxDiagnostics> diagnostics;
  AscentCallback callback;
  int64_t max_rows;  ///< 0: no limit
  Quadrature quadrature;            ///< the rule of the m IG points
  InnerObjective inner_objective;   ///< what the inner ascent climbs
  int64_t penalty_every;            ///< the penalty on every k-th call, weighted k
  uint64_t first_call;              ///< the index of the first call
};

/// Validates the options of a robust-IG term (the ball and the ascent through their one check
/// each) and gathers them; `name` names the public factory.
template <class Options>
RobustIGConfig robust_ig_config(const char* name, const Options& o, double weight, bool with_loss,
                                SizeFunction size) {
  check_ball(name, o.ball());
  check_ascent(name, o.ascent(), "attack_steps", "attack_step_size");
  TORCH_CHECK(std::isfinite(weight) && weight >= 0, name, ": ", with_loss ? "beta" : "lambda",
              " must be finite and >= 0, got ", weight);
  TORCH_CHECK(o.steps() >= 1, name, ": steps must be >= 1, got ", o.steps());
  TORCH_CHECK(o.inner_stride() >= 1 && o.inner_stride() <= o.steps(), name,
              ": inner_stride must lie in [1, steps = ", o.steps(), "], got ", o.inner_stride());
  // The strided points k = s, 2s, .., m must end at x′ with weights summing to 1.
  TORCH_CHECK(o.steps() % o.inner_stride() == 0, name, ": inner_stride must divide steps, got ",
              "steps = ", o.steps(), " and inner_stride = ", o.inner_stride());
  TORCH_CHECK(o.max_rows() >= 0, name, ": max_rows must be >= 0 (0 = no limit), got ",
              o.max_rows());
  TORCH_CHECK(o.penalty_every() >= 1, name, ": penalty_every must be >= 1, got ",
              o.penalty_every());
  TORCH_CHECK(o.quadrature() != Quadrature::riemann_trapezoid ||
                  o.steps() / o.inner_stride() >= 2,
              name, ": the trapezoid rule needs steps / inner_stride >= 2 points, got steps = ",
              o.steps(), " and inner_stride = ", o.inner_stride());
  return {name,          o.ball(),         o.ascent(),      o.steps(),
          o.inner_stride(), o.start(),     weight,          with_loss,
          size,          o.reduction(),    o.diagnostics(), o.callback(),
          o.max_rows(),  o.quadrature(),   o.inner_objective(), o.penalty_every(),
          o.first_call()};
}

/// Per-sample objective at x′: weight·s(IG^{ℓ_y}(x, x′)) [+ ℓ(x′)], IG along x → x′.
/// The graph is kept (create_graph) so it can be differentiated w.r.t. x′ or the parameters.
///
/// The one formula of every robust-IG term, at the input or at a layer: for IG_h at
/// h = head(·) pass the tail as `model` and the layer points head(x), head(x′) as `x`, `x_adv`
/// (the path is then straight in h-space and ℓ(x′) = ℓ(tail(head(x′)))).
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

/// The callback that fills `InnerMaxDiagnostics`: the maximizer so far and the batch-mean
/// objective of every iterate; `evaluate(x′)` supplies the objective where the ascent did not
/// compute it (the last iterate).
template <class Evaluate>
AscentCallback inner_max_recorder(std::shared_ptr<InnerMaxDiagnostics> diagnostics,
                                  Evaluate evaluate) {
  return [diagnostics = std::move(diagnostics), evaluate = std::move(evaluate)](
             int64_t t, const torch::Tensor& x_adv, const torch::Tensor& objective) {
    if (t == 0) diagnostics->objective.clear();
    diagnostics->adversarial = x_adv;
    const torch::Tensor value = objective.defined() ? objective : evaluate(x_adv);
    diagnostics->objective.push_back(value.mean().template item<double>());
  };
}

/// The start of the inner ascent for call `index` of the term: the start function's point
/// (projected onto the ball and range), a random point of the ball from the stream
/// (seed, index), or x.
inline torch::Tensor robust_ig_start(const torch::Tensor& anchor, const RobustIGConfig& c,
                                     uint64_t index) {
  if (!c.start) return ascent_start(anchor, c.ball, c.ascent, index);
  const torch::Tensor given = c.start(anchor);
  TORCH_CHECK(given.defined() && given.sizes() == anchor.sizes(), c.name,
              ": the start function must return a tensor of x's shape ", anchor.sizes(),
              ", got ", given.defined() ? given.sizes() : c10::IntArrayRef{});
  torch::NoGradGuard no_grad;
  return project_to_ball(given.detach().to(anchor.options()), anchor, c.ball);
}

/// The rule of the inner maximization: every inner_stride-th of the m right-Riemann points (the
/// official code's `IG_approx`), or `quadrature` with m / inner_stride points.
inline QuadratureRule inner_rule(const RobustIGConfig& c) {
  if (c.quadrature == Quadrature::riemann_right)
    return strided_right_riemann(c.steps, c.inner_stride);
  return quadrature(c.quadrature, c.steps / c.inner_stride);
}

/// The rule of the objective at the maximizer: all m points of `quadrature`.
inline QuadratureRule outer_rule(const RobustIGConfig& c) {
  if (c.quadrature == Quadrature::riemann_right) return strided_right_riemann(c.steps, 1);
  return quadrature(c.quadrature, c.steps);
}

/// Samples per chunk under `max_rows` for an objective with `points` IG points per sample
/// (N: no chunking).
inline int64_t samples_per_chunk(const RobustIGConfig& c, int64_t points, int64_t n) {
  if (c.max_rows <= 0 || n * points <= c.max_rows) return n;
  return std::max<int64_t>(1, c.max_rows / points);
}

/// The parameters of `model` that require grad, for `max_rows`: a module's; none for
/// `InputLayer`; an error for a callable, whose parameters cannot be seen.
template <class Model>
void append_trainable_parameters(const char* fn, const Model& model,
                                 std::vector<torch::Tensor>& params) {
  if constexpr (std::is_same_v<std::decay_t<Model>, InputLayer>) {
    return;
  } else {
    const torch::nn::Module* root = rar::nn::detail::module_root(model);
    TORCH_CHECK(root != nullptr, fn,
                ": max_rows needs a model that is a module (a module holder, a module, a shared "
                "pointer to one, or a rar::Split of such), whose parameters it differentiates "
                "chunk by chunk; got a callable");
    for (const torch::Tensor& p : root->parameters())
      if (p.requires_grad()) params.push_back(p);
  }
}

/// The inner maximization of call `index`: projected ascent (`rar::projected_ascent`) on the
/// strided objective over N(x, ε) ∩ range. Gradients are taken w.r.t. x′ only; nothing of its
/// graph survives the call. The diagnostics and the user's callback see every iterate.
///
/// IG is taken at the layer `head` maps to (h = head(x) once, without a graph; head(x′) at
/// every iterate, so the gradient reaches x′ through the head), with `tail` as the model
/// behind it; `head` = `InputLayer` is IG at the input, with `tail` the whole model.
template <class Head, class Tail>
torch::Tensor robust_ig_inner_max(Head& head, Tail& tail, const torch::Tensor& x,
                                  const torch::Tensor& y, const RobustIGConfig& c,
                                  uint64_t index) {
  const QuadratureRule rule = inner_rule(c);
  const bool loss_only = c.inner_objective == InnerObjective::loss;
  const torch::Tensor anchor = x.detach();
  const torch::Tensor h = [&] {
    torch::NoGradGuard no_grad;
    return layer_point(c.name, head, anchor, "x");
  }();
  // The per-sample strided objective at an iterate x′ (a leaf that requires grad).
  auto objective_on = [&](const torch::Tensor& hs, const torch::Tensor& xa,
                          const torch::Tensor& ys) {
    const torch::Tensor h_adv = layer_end_point(c.name, head, xa, hs);
    if (loss_only) return score::cross_entropy(call_model(tail, h_adv), ys);
    return robust_ig_objective(tail, hs, h_adv, ys, rule, c);
  };
  auto objective_at = [&](const torch::Tensor& xa) { return objective_on(h, xa, y); };
  AscentCallback callback = c.callback;
  if (c.diagnostics) {
    callback = chain_callbacks(
        inner_max_recorder(c.diagnostics,
                           [&](const torch::Tensor& point) {
                             return objective_at(point.detach().requires_grad_(true)).detach();
                           }),
        callback);
  }
  const int64_t n = anchor.size(0);
  const int64_t chunk =
      samples_per_chunk(c, loss_only ? 1 : static_cast<int64_t>(rule.alphas.size()), n);
  return projected_ascent(
      anchor, robust_ig_start(anchor, c, index), c.ball, c.ascent,
      [&](const torch::Tensor& point) {
        if (chunk >= n) {
          const torch::Tensor xa = point.detach().requires_grad_(true);
          const torch::Tensor objective = objective_at(xa);
          return AscentDirection{torch::autograd::grad({objective.sum()}, {xa})[0],
                                 objective.detach()};
        }
        // max_rows: the per-sample objectives are independent, so their gradients can be
        // taken chunk by chunk, one chunk's graph alive at a time.
        std::vector<torch::Tensor> grads, values;
        for (int64_t start = 0; start < n; start += chunk) {
          const int64_t stop = std::min(n, start + chunk);
          const torch::Tensor xa = point.slice(0, start, stop).detach().requires_grad_(true);
          const torch::Tensor objective =
              objective_on(h.slice(0, start, stop), xa, y.slice(0, start, stop));
          grads.push_back(torch::autograd::grad({objective.sum()}, {xa})[0]);
          values.push_back(objective.detach());
        }
        return AscentDirection{torch::cat(grads), torch::cat(values)};
      },
      callback);
}

/// The term object behind ig_norm / ig_sum_norm / ig_sum: inner maximization, then the
/// objective at the maximizer with all m points, differentiated through (double backward).
///
/// Called with a `rar::Split` it takes IG at the split's layer (IG_h along head(x) → head(x′),
/// x′ searched in the input ball); with any other model at the input. Both run the same inner
/// maximization and objective (`robust_ig_inner_max`, `robust_ig_objective`).
///
/// Call i (counted by a `rar::CallCounter`) draws its random start from the stream (seed, i).
/// Copies start from the original's count at the time of copying, then count on their own.
class RobustIGTerm {
 public:
  explicit RobustIGTerm(RobustIGConfig config) : config_(std::move(config)) {}

  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& x, const torch::Tensor& y) const {
    if constexpr (is_split_v<Model>) {
      return at_layer(model.head(), model.tail(), x, y);
    } else {
      InputLayer input;
      return at_layer(input, model, x, y);
    }
  }

  /// The number of calls so far: the stream index of the next call.
  uint64_t calls() const noexcept { return calls_.count(); }

 private:
  // IG at the layer head maps to, behind which tail computes the output (InputLayer: the input).
  template <class Head, class Tail>
  torch::Tensor at_layer(Head& head, Tail& tail, const torch::Tensor& x,
                         const torch::Tensor& y) const {
    check_labelled_batch(config_.name, x, y);
    check_in_clip_range(config_.name, "x", x, config_.ball);
    torch::AutoGradMode grad_mode(true);
    const uint64_t index = config_.first_call + calls_.next();
    const auto every = static_cast<uint64_t>(config_.penalty_every);
    if (index % every != 0) return without_penalty(head, tail, x, y, index);
    // penalty_every = k: the penalty of every k-th call weighted k.
    RobustIGConfig scaled;
    const RobustIGConfig* c = &config_;
    if (every > 1) {
      scaled = config_;
      scaled.weight *= static_cast<double>(every);
      c = &scaled;
    }
    const torch::Tensor x_adv = robust_ig_inner_max(head, tail, x, y, *c, index);
    const QuadratureRule full = outer_rule(*c);
    // h = head(x) keeps its graph: the term depends on the head's parameters through both ends.
    const int64_t n = x.size(0);
    const int64_t chunk = samples_per_chunk(*c, c->steps, n);
    if (chunk >= n) {
      const torch::Tensor h = layer_point(c->name, head, x.detach(), "x");
      const torch::Tensor h_adv = layer_end_point(c->name, head, x_adv, h);
      return reduce(robust_ig_objective(tail, h, h_adv, y, full, *c), c->reduction);
    }
    // max_rows: the parameter gradients chunk by chunk, attached to the returned loss.
    std::vector<torch::Tensor> params;
    append_trainable_parameters(c->name, head, params);
    append_trainable_parameters(c->name, tail, params);
    const double scale = c->reduction == Reduction::mean ? 1.0 / static_cast<double>(n) : 1.0;
    return chunked_parameter_loss(params, n, chunk, [&](int64_t start, int64_t stop) {
      const torch::Tensor h = layer_point(c->name, head, x.detach().slice(0, start, stop), "x");
      const torch::Tensor h_adv = layer_end_point(c->name, head, x_adv.slice(0, start, stop), h);
      return robust_ig_objective(tail, h, h_adv, y.slice(0, start, stop), full, *c).sum() * scale;
    });
  }

  // A call between two penalized ones (penalty_every > 1): IG-NORM and ig_sum are 0 (a leaf, so
  // that backward() still runs), IG-SUM-NORM is max ℓ(x′) with the ascent on the loss alone.
  template <class Head, class Tail>
  torch::Tensor without_penalty(Head& head, Tail& tail, const torch::Tensor& x,
                                const torch::Tensor& y, uint64_t index) const {
    if (!config_.with_loss)
      return torch::zeros({}, x.options().requires_grad(false)).requires_grad_(true);
    RobustIGConfig c = config_;
    c.inner_objective = InnerObjective::loss;
    const torch::Tensor x_adv = robust_ig_inner_max(head, tail, x, y, c, index);
    const torch::Tensor h = layer_point(c.name, head, x.detach(), "x");
    const torch::Tensor h_adv = layer_end_point(c.name, head, x_adv, h);
    return reduce(score::cross_entropy(call_model(tail, h_adv), y), c.reduction);
  }

  RobustIGConfig config_;
  CallCounter calls_;
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
/// N·m/inner_stride inputs) + one forward + double backward over N·m inputs. Three options
/// make it cheaper (docs/guide.md §7, "Cheaper training"): `quadrature` (fewer, better-placed
/// IG points), `inner_objective(InnerObjective::loss)` (a first-order inner ascent) and
/// `penalty_every` (the penalty on every k-th call, weighted k).
///
/// **Randomness, copies and threads.** The term counts its calls (`rar::CallCounter`): call i
/// (from 0) draws its random start from the stream (seed, i) (`rar::seeded_generator`), so a
/// training run is reproducible and the starts differ between batches. The count is the term's
/// only state. A copy of the term (e.g. inside `rar::cross_entropy() + term`) starts from the
/// count of the original at the time of copying and then counts on its own. Calling one term
/// from several threads at once is safe for the counter (each call gets its own index, in the
/// order the threads reach it); `diagnostics`, `callback`, `start` and the model must then be
/// safe to share themselves.
///
/// **At a layer.** Called with a `rar::Split{head, tail}` the term is the paper's
/// λ · max_{x′ ∈ N(x, ε)} ‖IG_h^{ℓ_y}(x, x′)‖₁ at h = head(·): IG of ℓ_y(tail(·)) along the
/// straight path from head(x) to head(x′) in h-space (`rar::layer_integrated_gradients` with
/// right-Riemann points), so Σ IG_h = ℓ(x′) − ℓ(x) up to the quadrature error. x′ is still
/// searched in the input ball (the ascent differentiates through the head), the options mean
/// the same, and `diagnostics`/`callback` see input-space iterates. The term depends on the
/// head's parameters through both ends of the path. With head = identity it equals the
/// input-space term. Extra cost: one head forward and backward over N rows per ascent step and
/// three head forwards besides, while the m path points run through the tail only.
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().epsilon(0.1));
/// objective(model, x, y).backward();
/// // The same objective with IG at the layer between head and tail:
/// objective(rar::Split{head, tail}, x, y).backward();
/// @endcode
/// @param options the ball (ε, norm, range), the ascent (attack_steps, attack_step_size,
///        random_start, seed), m, inner stride, start, λ, reduction, diagnostics, callback
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim; IG at the input, or at the layer when
///         `model` is a `rar::Split`
inline auto ig_norm(const IGNormOptions& options = {}) {
  return make_term(detail::RobustIGTerm(detail::robust_ig_config(
      "rar::ig_norm", options, options.lambda(), false, detail::SizeFunction::l1)));
}

/// IG-SUM-NORM: max_{x′ ∈ N(x, ε)} [ℓ(x′) + β ‖IG^{ℓ_y}(x, x′)‖₁] (Chen et al. 2019, eq. 5).
///
/// The whole objective (it already contains the loss at x′); inner maximization, cost and the
/// cheaper-training options as for `rar::ig_norm`, with ℓ(x′) read off the path's last point
/// when it is at α = 1 (no extra forward pass). `rar::IGSumNormOptions::fast(ε)` is the
/// recipe that combines the options (docs/methods.md, "Cheaper robust training").
/// Randomness, copies and threads as for `rar::ig_norm`: call i draws from the stream
/// (seed, i); a copy continues from the original's count at the time of copying.
/// Called with a `rar::Split{head, tail}` it is max_{x′} [ℓ(x′) + β ‖IG_h^{ℓ_y}(x, x′)‖₁] with
/// IG at h = head(·), as for `rar::ig_norm` (ℓ(x′) is still read off the path's last point,
/// tail(head(x′))).
///
/// Example:
/// @code
/// auto objective = rar::ig_sum_norm(rar::IGSumNormOptions().epsilon(0.3).beta(0.1));
/// objective(model, x, y).backward();                  // IG at the input
/// objective(rar::Split{head, tail}, x, y).backward(); // IG at the layer head(x)
/// @endcode
/// @param options as for `ig_norm`, with β
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim; IG at the layer when `model` is a
///         `rar::Split`
inline auto ig_sum_norm(const IGSumNormOptions& options = {}) {
  return make_term(detail::RobustIGTerm(detail::robust_ig_config(
      "rar::ig_sum_norm", options, options.beta(), true, detail::SizeFunction::l1)));
}

/// The weak instantiation with size function sum(): λ · max_{x′} Σ IG^{ℓ_y}(x, x′).
///
/// By completeness Σ IG ≈ ℓ(x′) − ℓ(x), so `cross_entropy() + ig_sum(λ = 1)` is Madry et al.'s
/// robust-prediction objective in the paper's terms; attributions may cancel inside the sum,
/// which is why it is weak for attribution robustness. Randomness, copies and threads as for
/// `rar::ig_norm`. With a `rar::Split{head, tail}` the sum is of IG_h at h = head(·); by
/// completeness in h-space it is again ≈ ℓ(x′) − ℓ(x), whichever layer is chosen.
///
/// Example:
/// @code
/// auto madry_like = rar::cross_entropy() + rar::ig_sum(rar::IGNormOptions().lambda(1.0));
/// torch::Tensor loss = madry_like(rar::Split{head, tail}, x, y);
/// @endcode
/// @param options as for `ig_norm`
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim; IG at the layer when `model` is a
///         `rar::Split`
inline auto ig_sum(const IGNormOptions& options = {}) {
  return make_term(detail::RobustIGTerm(detail::robust_ig_config(
      "rar::ig_sum", options, options.lambda(), false, detail::SizeFunction::sum)));
}

}  // namespace rar
