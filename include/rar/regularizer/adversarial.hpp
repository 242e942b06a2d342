#pragma once
/// @file
/// Madry et al.'s robust-prediction objective as a loss term (a weak instantiation of RAR).

#include <rar/attack/pgd.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

namespace rar {

/// Adversarial training (Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018): ℓ(x*) with x* the
/// PGD maximizer of the loss over N(x, ε) ∩ range.
///
/// In RAR's terms this is the size function sum() (Σ IG = ℓ(x′) − ℓ(x) by completeness), which
/// lets attributions cancel; use it alone as the whole objective, or mix it with
/// `rar::cross_entropy()`. The attack leaves the parameters' gradients untouched; only ℓ(x*) is
/// differentiated. The options' `callback` sees every PGD iterate of every call.
///
/// **Randomness, copies and threads.** The term counts its calls (`rar::CallCounter`): call i
/// (from 0) draws its random start from the stream (seed, i) (`rar::seeded_generator`), so a
/// training run is reproducible and the starts differ between batches; call 0 is exactly
/// `rar::pgd_attack` with the same options. A copy of the term starts from the count of the
/// original at the time of copying and then counts on its own. Concurrent calls of one term get
/// distinct indices (the counter is atomic), in the order the threads reach it; the model and
/// the callback must then be safe to share themselves.
///
/// Example:
/// @code
/// auto objective = rar::adversarial(rar::PGDOptions().epsilon(0.3).steps(40).step_size(0.01));
/// objective(model, x, y).backward();
/// @endcode
/// @param options the PGD attack (the ball, the ascent, loss, targeted, callback)
/// @param reduction mean (default) or sum over the batch
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto adversarial(const PGDOptions& options = {}, Reduction reduction = Reduction::mean) {
  const char* fn = "rar::adversarial";
  detail::check_pgd_options(fn, options);
  return make_term([options, reduction, fn, calls = CallCounter()](
                       auto& model, const torch::Tensor& x, const torch::Tensor& y) {
    detail::check_labelled_batch(fn, x, y);
    detail::check_in_clip_range(fn, "x", x, options.ball());
    const torch::Tensor x_adv =
        detail::pgd_attack_unchecked(model, x.detach(), y, options, fn, calls.next());
    return detail::reduce(options.loss()(call_model(model, x_adv), y), reduction);
  });
}

}  // namespace rar
