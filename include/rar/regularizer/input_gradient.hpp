#pragma once
/// @file
/// Input-gradient regularization: the first-order term of IG, a weak instantiation of RAR.

#include <rar/attribution/gradient.hpp>
#include <rar/core/score.hpp>
#include <rar/core/threat_model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace rar {

/// Options of `rar::input_gradient_norm`.
///
/// The ball is a `rar::BallOptions` block (`ball`); by default it has no clip range (the plain
/// dual norm). A finite range is supported for L∞ (the exact maximum over the ball ∩ range).
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() +
///                  rar::input_gradient_norm(rar::InputGradientOptions().epsilon(0.1).lambda(1.0));
/// @endcode
struct InputGradientOptions {
  /// The ball the first-order term is maximized over (defaults: ε = 0.3, L∞, no clip range).
  RAR_ARG(BallOptions, ball) = BallOptions()
                                   .clip_min(-std::numeric_limits<double>::infinity())
                                   .clip_max(std::numeric_limits<double>::infinity());
  /// Radius ε of the ball the first-order term is maximized over: `ball().epsilon()`.
  RAR_ARG_ALIAS(double, ball, epsilon, epsilon);
  /// Norm of the ball: L∞ gives ε‖∇ℓ‖₁, L2 gives ε‖∇ℓ‖₂ (the dual norms): `ball().norm()`.
  RAR_ARG_ALIAS(Norm, ball, norm, norm);
  /// Lower end of the data range (default −∞; finite only with L∞): `ball().clip_min()`.
  RAR_ARG_ALIAS(double, ball, clip_min, clip_min);
  /// Upper end of the data range (default +∞; finite only with L∞): `ball().clip_max()`.
  RAR_ARG_ALIAS(double, ball, clip_max, clip_max);
  /// Weight λ of the term.
  RAR_ARG(double, lambda) = 1.0;
  /// Mean (default) or sum over the batch.
  RAR_ARG(Reduction, reduction) = Reduction::mean;
};

/// Input-gradient regularization: λ · max_{‖δ‖ ≤ ε} ⟨δ, ∇ₓℓ(x)⟩ = λ ε ‖∇ₓℓ(x)‖_* (dual norm).
///
/// With a finite clip range (L∞ only) the maximum is taken over the ball ∩ range:
/// Σ_i g_i·u_i where g_i > 0 and g_i·l_i elsewhere, with u_i = min(ε, clip_max − x_i) and
/// l_i = max(−ε, clip_min − x_i).
///
/// IG(x, x + δ) = δ ⊙ ∇ℓ(x) + O(‖δ‖²), so this is IG-NORM's regularizer with IG cut after
/// its first term (the paper's Section 3 weak instantiation; Ross & Doshi-Velez 2018 penalize
/// the squared L2 norm of the same gradient). Differentiable in the parameters (double backward);
/// cost: one forward and one double backward over N inputs.
///
/// Example:
/// @code
/// torch::Tensor reg = rar::input_gradient_norm(rar::InputGradientOptions().epsilon(0.1))(model, x, y);
/// @endcode
/// @param options the ball (ε, norm, clip range), λ, reduction
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto input_gradient_norm(const InputGradientOptions& options = {}) {
  const char* fn = "rar::input_gradient_norm";
  detail::check_ball(fn, options.ball());
  const bool ranged = std::isfinite(options.clip_min()) || std::isfinite(options.clip_max());
  TORCH_CHECK(!ranged || options.norm() == Norm::linf, fn,
              ": a finite clip range is supported with Norm::linf only, got clip_min = ",
              options.clip_min(), " and clip_max = ", options.clip_max(), " with Norm::l2");
  TORCH_CHECK(std::isfinite(options.lambda()) && options.lambda() >= 0, fn,
              ": lambda must be finite and >= 0, got ", options.lambda());
  return make_term([options, fn, ranged](auto& model, const torch::Tensor& x,
                                         const torch::Tensor& y) {
    detail::check_labelled_batch(fn, x, y);
    detail::check_in_clip_range(fn, "x", x, options.ball());
    const torch::Tensor g = detail::input_gradient(
        fn, model, x.detach(),
        GradientOptions().target(y).score(score::cross_entropy).create_graph(true));
    if (ranged) {  // the exact maximum of ⟨δ, g⟩ over the L∞ ball ∩ range, per coordinate
      const double eps = options.epsilon();
      const torch::Tensor xd = x.detach();
      const torch::Tensor up = (options.clip_max() - xd).clamp_max(eps);
      const torch::Tensor down = (options.clip_min() - xd).clamp_min(-eps);
      const torch::Tensor best = torch::where(g > 0, g * up, g * down).flatten(1).sum(1);
      return options.lambda() * detail::reduce(best, options.reduction());
    }
    const torch::Tensor dual = options.norm() == Norm::linf ? g.abs().flatten(1).sum(1)
                                                            : g.flatten(1).norm(2, 1);
    return options.lambda() * options.epsilon() * detail::reduce(dual, options.reduction());
  });
}

}  // namespace rar
