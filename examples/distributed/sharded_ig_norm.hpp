#pragma once
/// @file
/// IG-NORM on one rank's rows of a global batch whose random starts are those of the whole
/// batch, so that W ranks together use exactly the starts a single process would draw.
///
/// `rar::ig_norm` draws the starts of its inner maximization for the batch it is given. A rank
/// that gets B / W rows would draw other numbers than rows r, r + W, ... of a single process's
/// draw for all B rows, and the runs would differ (in distribution they are the same). Here every
/// rank draws the start of the GLOBAL batch from the common seed, exactly as `rar::ig_norm` with
/// that seed would on the whole batch, keeps its rows, and hands them to `rar::ig_norm` through
/// `IGNormOptions::start`.

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
  at::Generator gen = rar::seeded_generator(seed);
  return detail::random_start(gen, x.detach(), options.epsilon(), options.norm(),
                              options.clip_min(), options.clip_max());
}

/// `rar::ig_norm(options)` for the rows `shard` of the global batch `x_global`, its inner
/// maximization started at those rows of `global_random_start(x_global, options, seed)`.
/// Called with the rank's rows of x and y, it equals those rows' share of
/// `rar::ig_norm(options.seed(seed))` on the whole batch.
///
/// Example:
/// @code
/// auto objective = rar::cross_entropy() + sharded_ig_norm(options, seed, x_global, rows);
/// objective(net, x_global.index_select(0, rows), y_global.index_select(0, rows)).backward();
/// @endcode
inline auto sharded_ig_norm(const IGNormOptions& options, uint64_t seed,
                            const torch::Tensor& x_global, const torch::Tensor& shard) {
  const torch::Tensor start = global_random_start(x_global, options, seed)
                                  .index_select(0, shard.to(x_global.device()));
  return rar::ig_norm(
      IGNormOptions(options).start([start](const torch::Tensor&) { return start; }));
}

}  // namespace examples
}  // namespace rar
