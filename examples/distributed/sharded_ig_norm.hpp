#pragma once
/// @file
/// IG-NORM on one rank's rows of a global batch whose random starts are those of the whole
/// batch, so that W ranks together use exactly the starts a single process would draw.
///
/// `rar::ig_norm` draws the starts of its inner maximization for the batch it is given. A rank
/// that gets B / W rows would draw other numbers than rows r, r + W, ... of a single process's
/// draw for all B rows, and the runs would differ (in distribution they are the same). Here every
/// rank draws the start of the GLOBAL batch from the common seed, exactly as `rar::ig_norm` with
/// that seed would on the whole batch, keeps its rows, and runs the same inner maximization and
/// outer objective from there. `IGNormOptions` has no way to hand a start in, so this composes
/// rar's building blocks (`include/rar/regularizer/robust_ig.hpp`, `attack/ball.hpp`) the way
/// `detail::RobustIGTerm` does; the test checks that on one rank it equals `rar::ig_norm`.

#include <torch/torch.h>

#include <cstdint>
#include <rar/rar.hpp>

namespace rar {
namespace examples {

/// The uniform random start of IG-NORM's inner maximization for a whole batch `x` (its first
/// draw from a generator seeded with `seed`): what `rar::ig_norm(options.seed(seed))` starts
/// from on its first call with `x`.
///
/// Example:
/// @code
/// torch::Tensor start = global_random_start(x_global, options, seed).index_select(0, rows);
/// @endcode
inline torch::Tensor global_random_start(const torch::Tensor& x, const IGNormOptions& options,
                                         uint64_t seed) {
  at::Generator gen = detail::seeded_generator(seed);
  return detail::random_start(gen, x.detach(), options.epsilon(), options.norm(),
                              options.clip_min(), options.clip_max());
}

/// IG-NORM's regularizer λ · max_{x′ ∈ N(x, ε)} ‖IG^{ℓ_y}(x, x′)‖₁ as `rar::ig_norm`, with the
/// inner maximization started at `start` (same shape as the x it is called with) instead of a
/// draw of its own; `options.random_start()` and `options.seed()` are not used.
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() +
///                  ig_norm_from_start(options, global_start.index_select(0, rows));
/// objective(net, x.index_select(0, rows), y.index_select(0, rows)).backward();
/// @endcode
inline auto ig_norm_from_start(const IGNormOptions& options, torch::Tensor start) {
  const detail::RobustIGConfig c =
      detail::robust_ig_config("rar::examples::ig_norm_from_start", options, options.lambda(),
                               false, detail::SizeFunction::l1);
  return make_term(
      [c, start = start.detach()](auto& model, const torch::Tensor& x, const torch::Tensor& y) {
        detail::check_labelled_batch(c.name, x, y);
        TORCH_CHECK(start.sizes() == x.sizes(), c.name, ": start must have x's shape ", x.sizes(),
                    ", got ", start.sizes());
        torch::AutoGradMode grad_mode(true);
        const torch::Tensor anchor = x.detach();
        // The inner maximization of detail::robust_ig_inner_max, from the given start.
        const QuadratureRule inner = detail::strided_right_riemann(c.steps, c.inner_stride);
        const torch::Tensor x_adv = detail::projected_ascent(
            anchor, start.to(x.options()), c.attack_steps, c.step_size, c.epsilon, c.norm,
            c.clip_min, c.clip_max, [&](const torch::Tensor& point) {
              const torch::Tensor xa = point.detach().requires_grad_(true);
              const torch::Tensor objective =
                  detail::robust_ig_objective(model, anchor, xa, y, inner, c);
              return torch::autograd::grad({objective.sum()}, {xa})[0];
            });
        // The term at the maximizer with all m points, differentiable in the parameters.
        const QuadratureRule full = detail::strided_right_riemann(c.steps, 1);
        return detail::reduce(detail::robust_ig_objective(model, anchor, x_adv, y, full, c),
                              c.reduction);
      });
}

}  // namespace examples
}  // namespace rar
