#pragma once
/// @file
/// Attribution alignment, the integrated-gradients regularizer (IGR) of Wang and Kong,
/// "Exploiting the Relationship Between Kendall's Rank Correlation and Cosine Similarity for
/// Attribution Protection" (NeurIPS 2022; arXiv 2205.07279): a base term plus
/// λ·(1 − cos(A(x), A(x̃))). No official code was published; see docs/methods.md for the
/// choices made here.

#include <rar/attack/pgd.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/explain/explainers.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/regularizer/common.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace rar {

/// The base objective that `rar::attribution_alignment` adds its alignment penalty to.
///
/// Example: `rar::AlignmentOptions().base(rar::AlignmentBase::madry)`.
enum class AlignmentBase {
  natural,  ///< CE(f(x), y): natural training plus the penalty
  madry     ///< CE(f(x̃), y) at the PGD point x̃ (Madry et al.) plus the penalty
};

/// Options of `rar::attribution_alignment`.
///
/// x̃ is the PGD point of `attack` (the cross-entropy ascended over the ball; defaults: ε = 0.3,
/// 40 steps of 0.01 from a random start, [0, 1]: the MNIST setting of Madry et al. and Chen et
/// al.), used both by the Madry base and by the penalty. The default explainer is Integrated
/// Gradients with `ig` (zero baseline, 10 Gauss-Legendre points: the penalty differentiates
/// 2·N·10 path points twice per step). λ = 1 is our choice: the paper's value was not retrievable.
///
/// Example:
/// @code
/// auto opts = rar::AlignmentOptions().base(rar::AlignmentBase::madry).lambda(0.5)
///                 .epsilon(0.1).attack_steps(10).attack_step_size(0.02);
/// auto objective = rar::attribution_alignment(opts);
/// objective(model, images, labels).backward();
/// @endcode
struct AlignmentOptions {
  /// The attack that finds x̃: PGD on the cross-entropy (ball, ascent, loss, callback).
  RAR_ARG(PGDOptions, attack) = PGDOptions();
  /// Radius ε of the attack's ball: `attack().epsilon()`.
  RAR_ARG_ALIAS(double, attack, epsilon, epsilon);
  /// Norm of the attack's ball: `attack().norm()`.
  RAR_ARG_ALIAS(Norm, attack, norm, norm);
  /// Lower end of the data range; x must lie in the range: `attack().clip_min()`.
  RAR_ARG_ALIAS(double, attack, clip_min, clip_min);
  /// Upper end of the data range: `attack().clip_max()`.
  RAR_ARG_ALIAS(double, attack, clip_max, clip_max);
  /// PGD steps (0: x̃ is the start point): `attack().steps()`.
  RAR_ARG_ALIAS(int64_t, attack, attack_steps, steps);
  /// PGD step size: `attack().step_size()`.
  RAR_ARG_ALIAS(double, attack, attack_step_size, step_size);
  /// Start PGD at a uniform random point of the ball (else at x): `attack().random_start()`.
  RAR_ARG_ALIAS(bool, attack, random_start, random_start);
  /// Seed of the random starts: call i of the term draws from the stream (seed, i).
  RAR_ARG_ALIAS(uint64_t, attack, seed, seed);
  /// The base objective: natural CE at x (default) or Madry's CE at x̃.
  RAR_ARG(AlignmentBase, base) = AlignmentBase::natural;
  /// Weight λ ≥ 0 of the alignment penalty 1 − cos(A(x), A(x̃)).
  RAR_ARG(double, lambda) = 1.0;
  /// Integrated Gradients options of the default explainer (target and create_graph are set by
  /// the term; steps, method, baseline, internal_batch_size and score are used). Ignored when an
  /// explainer is given to `rar::attribution_alignment`.
  RAR_ARG(IGOptions, ig) = IGOptions().steps(10);
  /// Mean (default) or sum over the batch.
  RAR_ARG(Reduction, reduction) = Reduction::mean;
};

namespace detail {

/// Validates alignment options; `fn` names the public entry point.
inline void check_alignment_options(const char* fn, const AlignmentOptions& options) {
  check_pgd_options(fn, options.attack());
  TORCH_CHECK(options.base() == AlignmentBase::natural || options.base() == AlignmentBase::madry,
              fn, ": base must be AlignmentBase::natural or AlignmentBase::madry, got ",
              static_cast<int>(options.base()));
  TORCH_CHECK(std::isfinite(options.lambda()) && options.lambda() >= 0, fn,
              ": lambda must be finite and >= 0, got ", options.lambda());
  TORCH_CHECK(options.ig().steps() >= 1, fn, ": ig steps must be >= 1, got ",
              options.ig().steps());
}

}  // namespace detail

/// Attribution alignment with any explainer (Wang and Kong, NeurIPS 2022, with A free):
///
///     loss = base + λ·(1 − cos(A(x), A(x̃))),   base = CE(f(x), y) or CE(f(x̃), y),
///
/// each reduced over the batch, A(·) = explainer(model, ·, y, /*create_graph=*/true) flattened
/// per sample and x̃ the PGD point of `options.attack()` (detached). The penalty is
/// differentiable in the parameters through both maps; it is 0 when x̃ = x and at most 2.
///
/// **Randomness.** The term counts its calls (`rar::CallCounter`): call i starts PGD from the
/// stream (seed, i), as `rar::adversarial` does.
///
/// Example:
/// @code
/// #include <rar/rar.hpp>  // rar::explain
/// auto objective = rar::attribution_alignment(rar::explain::saliency(),
///                                             rar::AlignmentOptions().lambda(0.5));
/// objective(model, x, y).backward();
/// @endcode
/// @param explainer a callable `(model, input, target, bool create_graph) -> attributions` that
///        honours create_graph (see `rar/core/explainer.hpp`)
/// @param options the attack, base, λ, reduction (`ig` is not used)
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
template <class Explainer,
          class = std::enable_if_t<!std::is_same_v<std::decay_t<Explainer>, AlignmentOptions>>>
auto attribution_alignment(Explainer explainer, const AlignmentOptions& options = {}) {
  const char* fn = "rar::attribution_alignment";
  detail::check_alignment_options(fn, options);
  return make_term([explainer = std::move(explainer), options, fn, calls = CallCounter()](
                       auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    using M = std::remove_reference_t<decltype(model)>;
    static_assert(is_explainer_v<const Explainer, M>,
                  "rar::attribution_alignment: the explainer must be callable as "
                  "torch::Tensor(model, const torch::Tensor& input, const torch::Tensor& target, "
                  "bool create_graph), e.g. rar::explain::integrated_gradients(opts)");
    detail::check_labelled_batch(fn, x, y);
    detail::check_in_clip_range(fn, "x", x, options.attack().ball());
    const torch::Tensor xd = x.detach();
    const torch::Tensor x_adv =
        detail::pgd_attack_unchecked(model, xd, y, options.attack(), fn, calls.next());
    torch::AutoGradMode grad_mode(true);
    const torch::Tensor a = explainer(model, xd, y, true);
    const torch::Tensor a_adv = explainer(model, x_adv, y, true);
    TORCH_CHECK(a.sizes() == xd.sizes() && a_adv.sizes() == xd.sizes(), fn,
                ": the explainer must return attributions of the input's shape ", xd.sizes(),
                ", got ", a.sizes(), " and ", a_adv.sizes());
    const torch::Tensor penalty = detail::cosine_distance(a, a_adv);
    const torch::Tensor at = options.base() == AlignmentBase::madry ? x_adv : xd;
    const torch::Tensor base = score::cross_entropy(call_model(model, at), y);
    return detail::reduce(base, options.reduction()) +
           options.lambda() * detail::reduce(penalty, options.reduction());
  });
}

/// Attribution alignment (Wang and Kong, "Exploiting the Relationship Between Kendall's Rank
/// Correlation and Cosine Similarity for Attribution Protection", NeurIPS 2022: their
/// integrated-gradients regularizer, IGR) with Integrated Gradients as A:
///
///     loss = base + λ·(1 − cos(IG(x), IG(x̃))),
///
/// IG of the true-class logit from the options' `ig` (zero baseline by default), x̃ the PGD
/// point, base natural CE at x or Madry's CE at x̃. The paper motivates the cosine by its
/// positive correlation with the Kendall rank correlation of the two maps, which the
/// attribution attacks lower. See the explainer overload for the details.
///
/// Example:
/// @code
/// auto objective = rar::attribution_alignment(
///     rar::AlignmentOptions().base(rar::AlignmentBase::madry).epsilon(0.1).attack_steps(10));
/// torch::Tensor loss = objective(model, x, y);
/// loss.backward();
/// @endcode
/// @param options the attack, base, λ, IG options, reduction
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto attribution_alignment(const AlignmentOptions& options = {}) {
  detail::check_alignment_options("rar::attribution_alignment", options);
  return attribution_alignment(rar::explain::integrated_gradients(options.ig()), options);
}

}  // namespace rar
