#pragma once
/// @file
/// Shapley value sampling (Castro, Gómez, Tejada, "Polynomial calculation of the Shapley value
/// based on sampling", Computers & Operations Research 2009; Štrumbelj, Kononenko, "An
/// efficient explanation of individual classifications using game theory", JMLR 2010) with
/// Captum 0.7's `ShapleyValueSampling` semantics, batched over every permutation and step.

#include <rar/attribution/perturbation.hpp>
#include <rar/core/random.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace rar {

/// Options for `rar::shapley_value_sampling`.
///
/// Example:
/// @code
/// auto opts = rar::ShapleyOptions().samples(200).feature_mask(superpixels).seed(7).target(y);
/// torch::Tensor phi = rar::shapley_value_sampling(model, images, opts);
/// @endcode
struct ShapleyOptions {
  /// Number of random permutations of the features (≥ 1); Captum's `n_samples`.
  RAR_ARG(int64_t, samples) = 25;
  /// Integer group id of every element, as for `rar::FeatureAblationOptions::feature_mask`:
  /// broadcastable to the input, batch dimension 1 (shared) or N (per sample), aligned to the
  /// right. The players of the game are the distinct ids. Undefined: every element is a player.
  RAR_ARG(torch::Tensor, feature_mask);
  /// The value of an absent player's elements (Captum's scalar `baselines`).
  RAR_ARG(double, baseline) = 0.0;
  /// A baseline tensor instead of the scalar, broadcastable to the input, the input's dtype and
  /// device. Undefined (the default): `baseline` everywhere.
  RAR_ARG(torch::Tensor, baseline_tensor);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the class the model predicts for the
  /// input; a model with output `[N]` is explained as it is.
  RAR_ARG(torch::Tensor, target);
  /// Seed of the permutations: all are drawn from the stream (seed, 0) (`rar::seeded_generator`)
  /// on the CPU, one `randperm` per sample, so a seed gives the same result on every device.
  RAR_ARG(uint64_t, seed) = 0;
  /// Permutation steps per forward pass (each contributes N rows). 0 (the default) = rar's
  /// batching rule over the rows; Captum's `perturbations_per_eval`.
  RAR_ARG(int64_t, perturbations_per_eval) = 0;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// Shapley value sampling over given permutations `[S, G]` (row s: the order in which the G
/// players, numbered by their position among the sorted ids, join): the one implementation
/// behind `rar::shapley_value_sampling`, exposed so that tests can replay Captum's orders.
template <class Model>
torch::Tensor shapley_value_sampling_with(const char* fn, Model& model, const torch::Tensor& input,
                                          const ShapleyOptions& options,
                                          const torch::Tensor& permutations) {
  check_batch(fn, "input", input);
  const FeatureGroups groups = feature_groups(fn, options.feature_mask(), input);
  TORCH_CHECK(groups.mask.size(0) == 1 || groups.mask.size(0) == input.size(0), fn,
              ": feature_mask must have batch dimension 1 (shared) or ", input.size(0),
              " (one per sample), got shape ", options.feature_mask().sizes());
  const int64_t players = groups.ids.size(0);
  TORCH_CHECK(permutations.dim() == 2 && permutations.size(1) == players &&
                  permutations.size(0) >= 1 && permutations.scalar_type() == torch::kLong,
              fn, ": permutations must be int64 [samples, ", players, "], got ",
              permutations.scalar_type(), " ", permutations.sizes());
  torch::NoGradGuard no_grad;
  const PerturbationStart start = start_perturbation(
      fn, model, input, options.baseline(), options.baseline_tensor(), options.target(),
      options.perturbations_per_eval(), options.score(), /*with_baseline=*/true);
  const torch::Tensor& x = start.input;
  const int64_t n = x.size(0);
  const int64_t samples = permutations.size(0);

  // rank[s, g]: the step at which player g joins in permutation s.
  const torch::Tensor perms = permutations.to(torch::kCPU);
  const torch::Tensor steps = torch::arange(players, torch::kLong).expand({samples, players});
  TORCH_CHECK(std::get<0>(perms.sort(1)).equal(steps), fn,
              ": every row of permutations must be a permutation of 0 .. ", players - 1);
  const torch::Tensor rank = torch::empty_like(perms).scatter_(1, perms, steps).to(x.device());

  // Steps 0 .. G−2 of every permutation (step G−1, all players present, is the input itself,
  // scored already): row (s·(G−1) + t)·N + n holds the players of steps ≤ t at their input
  // values and the others at the baseline.
  const bool shared = groups.mask.size(0) == 1;
  const torch::Tensor player_of = groups.index.reshape({groups.index.size(0), -1});  // [1 or N, E]
  std::vector<int64_t> mask_shape(groups.mask.sizes().begin(), groups.mask.sizes().end());
  std::vector<torch::Tensor> parts;
  for_each_perturbation_chunk(
      samples * (players - 1), options.perturbations_per_eval(), x,
      [&](const PerturbationChunk& chunk) {
        const int64_t rows = chunk.sample.size(0);
        const torch::Tensor permutation = chunk.perturbation.div(players - 1, "trunc");
        const torch::Tensor step = chunk.perturbation.remainder(players - 1);
        const torch::Tensor owner = shared ? player_of.expand({rows, player_of.size(1)})
                                           : player_of.index_select(0, chunk.sample);
        mask_shape[0] = rows;
        const torch::Tensor present = rank.index_select(0, permutation)
                                          .gather(1, owner)
                                          .le(step.unsqueeze(1))
                                          .view(mask_shape);
        const torch::Tensor perturbed =
            torch::where(present, x.index_select(0, chunk.sample),
                         baseline_rows(start.baseline, chunk.sample));
        const torch::Tensor t =
            start.target.defined() ? start.target.index_select(0, chunk.sample) : start.target;
        parts.push_back(perturbation_scores(fn, model, x, perturbed, t, options.score()));
      });
  // Scores along each permutation, [S, G + 1, N]: the baseline, steps 0 .. G−2, the input.
  std::vector<torch::Tensor> path{start.baseline_score.view({1, 1, n}).expand({samples, 1, n})};
  if (!parts.empty()) path.push_back(torch::cat(parts).view({samples, players - 1, n}));
  path.push_back(start.score.view({1, 1, n}).expand({samples, 1, n}));
  const torch::Tensor along = torch::cat(path, 1);
  // Marginal contribution of the player joining at each step, then per player.
  const torch::Tensor step_gain = along.slice(1, 1) - along.slice(1, 0, players);
  const torch::Tensor gain =
      step_gain.gather(1, rank.unsqueeze(2).expand({samples, players, n})).sum(0) /
      static_cast<double>(samples);  // [G, N]
  // Every element gets its player's value.
  const torch::Tensor per_element =
      gain.t().gather(1, shared ? player_of.expand({n, player_of.size(1)}) : player_of);
  mask_shape[0] = n;
  return expand_to_input(per_element.view(mask_shape).contiguous(), x);
}

}  // namespace detail

/// Shapley value sampling: each player's (feature group's) marginal contribution to the score,
/// averaged over random orders in which the players join, starting from the baseline.
///
/// For permutations π_1 … π_S of the G players, S_π,g the players before g in π and x_S the
/// input with the players of S at their input values and the others at the baseline,
///
///   φ_g(x) = (1/S) Σ_s (F(x_{S_πs,g ∪ {g}}) − F(x_{S_πs,g})),
///
/// an unbiased estimate of the Shapley value; every element of group g gets φ_g. Along each
/// permutation the gains telescope, so Σ_g φ_g = F(x) − F(baseline) exactly (efficiency).
/// The same estimator as Captum 0.7's `ShapleyValueSampling(model).attribute(x, baselines,
/// target, feature_mask=mask, n_samples=samples)`, whose orders come from PyTorch's global
/// generator (rar's from `seed`) and whose result is float32 (rar's has the input's dtype);
/// Captum's players are the ids 0 .. max, rar's the ids that occur. Costs one forward over the
/// N inputs and their baselines and one over the S·(G − 1)·N partial inputs (the last step of
/// every permutation is the input), in chunks (`perturbations_per_eval` overrides the batching
/// rule), without gradients.
///
/// Example:
/// @code
/// torch::Tensor phi = rar::shapley_value_sampling(
///     net, images, rar::ShapleyOptions().feature_mask(superpixels).samples(100).target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options samples, feature_mask, baseline, target, seed, perturbations_per_eval, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor shapley_value_sampling(Model&& model, const torch::Tensor& input,
                                     const ShapleyOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::shapley_value_sampling";
  detail::check_batch(fn, "input", input);
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  const detail::FeatureGroups groups = detail::feature_groups(fn, options.feature_mask(), input);
  const int64_t players = groups.ids.size(0);
  at::Generator generator = seeded_generator(options.seed(), 0);
  std::vector<torch::Tensor> orders;
  orders.reserve(static_cast<size_t>(options.samples()));
  for (int64_t s = 0; s < options.samples(); ++s)
    orders.push_back(torch::randperm(players, generator, torch::kLong));
  return detail::shapley_value_sampling_with(fn, model, input, options, torch::stack(orders));
}

}  // namespace rar
