#pragma once
/// @file
/// Input-gradient regularization: the first-order term of IG, a weak instantiation of RAR.

#include <rar/attack/ball.hpp>
#include <rar/attribution/gradient.hpp>
#include <rar/detail/arg.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <cmath>

namespace rar {

/// Options of `rar::input_gradient_norm`.
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() +
///                  rar::input_gradient_norm(rar::InputGradientOptions().epsilon(0.1).lambda(1.0));
/// @endcode
struct InputGradientOptions {
  /// Radius ε of the ball the first-order term is maximized over.
  RAR_ARG(double, epsilon) = 0.3;
  /// Norm of the ball: L∞ gives ε‖∇ℓ‖₁, L2 gives ε‖∇ℓ‖₂ (the dual norms).
  RAR_ARG(Norm, norm) = Norm::linf;
  /// Weight λ of the term.
  RAR_ARG(double, lambda) = 1.0;
  /// Mean (default) or sum over the batch.
  RAR_ARG(Reduction, reduction) = Reduction::mean;
};

/// Input-gradient regularization: λ · max_{‖δ‖ ≤ ε} ⟨δ, ∇ₓℓ(x)⟩ = λ ε ‖∇ₓℓ(x)‖_* (dual norm).
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
/// @param options ε, norm, λ, reduction
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto input_gradient_norm(const InputGradientOptions& options = {}) {
  const char* fn = "rar::input_gradient_norm";
  TORCH_CHECK(std::isfinite(options.epsilon()) && options.epsilon() >= 0, fn,
              ": epsilon must be finite and >= 0, got ", options.epsilon());
  TORCH_CHECK(std::isfinite(options.lambda()) && options.lambda() >= 0, fn,
              ": lambda must be finite and >= 0, got ", options.lambda());
  return make_term([options, fn](auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    detail::check_labelled_batch(fn, x, y);
    const torch::Tensor g = detail::input_gradient(
        fn, model, x.detach(),
        GradientOptions().target(y).score(score::cross_entropy).create_graph(true));
    const torch::Tensor dual = options.norm() == Norm::linf ? g.abs().flatten(1).sum(1)
                                                            : g.flatten(1).norm(2, 1);
    return options.lambda() * options.epsilon() * detail::reduce(dual, options.reduction());
  });
}

}  // namespace rar
