#pragma once
/// @file
/// Madry et al.'s robust-prediction objective as a loss term (a weak instantiation of RAR).

#include <rar/attack/pgd.hpp>
#include <rar/regularizer/term.hpp>

#include <torch/torch.h>

#include <atomic>
#include <memory>

namespace rar {

/// Adversarial training (Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018): ℓ(x*) with x* the
/// PGD maximizer of the loss over N(x, ε) ∩ range.
///
/// In RAR's terms this is the size function sum() (Σ IG = ℓ(x′) − ℓ(x) by completeness), which
/// lets attributions cancel; use it alone as the whole objective, or mix it with
/// `rar::cross_entropy()`. Each call draws a new random start from the `seed` stream, so a
/// training run is reproducible and the starts differ between batches. The attack leaves the
/// parameters' gradients untouched; only ℓ(x*) is differentiated.
///
/// Example:
/// @code
/// auto objective = rar::adversarial(rar::PGDOptions().epsilon(0.3).steps(40).step_size(0.01));
/// objective(model, x, y).backward();
/// @endcode
/// @param options the PGD attack (ε, step size, steps, norm, start, range, seed)
/// @param reduction mean (default) or sum over the batch
/// @return a `rar::Term` `(model, x, y) -> loss`, 0-dim
inline auto adversarial(const PGDOptions& options = {}, Reduction reduction = Reduction::mean) {
  const char* fn = "rar::adversarial";
  TORCH_CHECK(options.epsilon() >= 0, fn, ": epsilon must be >= 0, got ", options.epsilon());
  TORCH_CHECK(options.steps() >= 0, fn, ": steps must be >= 0, got ", options.steps());
  auto calls = std::make_shared<std::atomic<uint64_t>>(0);
  return make_term([options, reduction, calls, fn](auto& model, const torch::Tensor& x,
                                                   const torch::Tensor& y) {
    detail::check_labelled_batch(fn, x, y);
    auto opts = options;
    // A distinct, reproducible stream per call (golden-ratio increments, as in splitmix64).
    opts.seed(options.seed() + 0x9E3779B97F4A7C15ULL * calls->fetch_add(1));
    const torch::Tensor x_adv = pgd_attack(model, x.detach(), y, opts);
    return detail::reduce(options.loss()(detail::call_model(model, x_adv), y), reduction);
  });
}

}  // namespace rar
