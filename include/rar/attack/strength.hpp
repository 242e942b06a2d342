#pragma once
/// @file
/// Is the attribution attack strong? `rar::attack_strength` runs the random-sign baseline of
/// both papers at the same budget (ball, iterations, step size, seed) on the same inputs and
/// compares the two attacks' top-k intersection and Kendall's tau. An attack that does not beat
/// random noise says more about the attack (a surrogate that disagrees with the model, an
/// explainer whose map is not differentiated) than about the model's robustness.

#include <rar/attack/attribution_attack.hpp>
#include <rar/metrics/topk.hpp>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>

namespace rar {

/// The outcome of `rar::attack_strength`: the attack's and the random-sign baseline's mean
/// top-k intersection (IN) and Kendall's tau (CO) over the same samples, lower meaning a
/// stronger attack.
struct AttackStrength {
  /// Samples counted: those both attacks kept at the target label (the attacked ones).
  int64_t samples = 0;
  /// Mean IN (at the options' k) of the attack being checked.
  double attack_topk_intersection = std::numeric_limits<double>::quiet_NaN();
  /// Mean CO (Kendall's tau) of the attack being checked.
  double attack_kendall = std::numeric_limits<double>::quiet_NaN();
  /// Mean IN of the random-sign attack at the same budget.
  double random_topk_intersection = std::numeric_limits<double>::quiet_NaN();
  /// Mean CO of the random-sign attack at the same budget.
  double random_kendall = std::numeric_limits<double>::quiet_NaN();
  /// The attack lowered the options' measure (IN, or CO for `AttackMeasure::kendall_tau`) below
  /// the baseline's; false also when no sample was counted.
  bool stronger = false;
};

/// Checks an attribution attack against the random-sign baseline at the same budget.
///
/// Runs `rar::attribution_attack(model, model, method, input, target, options)` with
/// `kind(AttackKind::random_sign)` (a Gaussian direction per step, seeded by `options.seed()`)
/// and compares its mean IN and CO with those of `attack`, the result of the attack being
/// checked on the same inputs, targets and options, over the samples both kept at their label.
/// When the attack is not stronger on the options' measure, it warns (`TORCH_WARN`, once per
/// call) and says what to look at: a surrogate that disagrees with the model
/// (`AttackResult::surrogate_agreement`, `rar::choose_surrogate_beta`), too few iterations or
/// too small a step. Costs one random-sign attack: per iteration one forward and one map of the
/// model, no double backward.
///
/// Example:
/// @code
/// auto opts = rar::AttributionAttackOptions().k(100).epsilon(0.1);
/// rar::AttackResult r = rar::attribution_attack(net, smooth, ig, x, y, opts);
/// rar::AttackStrength s = rar::attack_strength(net, ig, x, y, r, opts);
/// std::cout << "IN " << s.attack_topk_intersection << " vs random-sign "
///           << s.random_topk_intersection << (s.stronger ? "" : " (weak attack)") << "\n";
/// @endcode
/// @param model the real network, as passed to the attack
/// @param method the explainer, as passed to the attack
/// @param input, target the attacked batch, as passed to the attack
/// @param attack the attack's result on that batch
/// @param options the attack's options (the kind is replaced by `random_sign`)
/// @return both attacks' means and whether the attack is stronger
template <class Model, class Method>
AttackStrength attack_strength(Model&& model, Method&& method, const torch::Tensor& input,
                               const torch::Tensor& target, const AttackResult& attack,
                               const AttributionAttackOptions& options = {}) {
  const char* fn = "rar::attack_strength";
  TORCH_CHECK(input.defined() && input.dim() >= 1, fn,
              ": input must be a batch [N, ...], got ",
              input.defined() ? input.sizes() : torch::IntArrayRef{});
  const int64_t n = input.size(0);
  const auto rows = [&](const torch::Tensor& t, const char* name) {
    TORCH_CHECK(t.defined() && t.dim() >= 1 && t.size(0) == n, fn, ": attack.", name,
                " must have one row per input sample (", n, "), got ",
                t.defined() ? t.sizes() : torch::IntArrayRef{},
                "; pass the AttackResult of the same input");
  };
  rows(attack.topk_intersection, "topk_intersection");
  rows(attack.kendall_tau, "kendall_tau");
  rows(attack.prediction_kept, "prediction_kept");
  rows(attack.original_map, "original_map");
  rows(attack.adversarial_map, "adversarial_map");

  const AttackResult random = attribution_attack(
      model, model, method, input, target,
      AttributionAttackOptions(options).kind(AttackKind::random_sign).callback({}));
  const torch::Tensor counted = (attack.prediction_kept & random.prediction_kept).cpu();
  AttackStrength s;
  s.samples = counted.sum().template item<int64_t>();
  if (s.samples == 0) return s;
  const auto mean = [&](const torch::Tensor& v) {
    return v.cpu().to(torch::kDouble).index({counted}).nan_to_num(0.0).mean().template item<double>();
  };
  // IN at k against the attack's own original map, for both attacks alike.
  s.attack_topk_intersection =
      mean(topk_intersection(attack.original_map, attack.adversarial_map, options.k()));
  s.random_topk_intersection =
      mean(topk_intersection(random.original_map, random.adversarial_map, options.k()));
  s.attack_kendall = mean(attack.kendall_tau);
  s.random_kendall = mean(random.kendall_tau);
  s.stronger = options.measure() == AttackMeasure::kendall_tau
                   ? s.attack_kendall < s.random_kendall
                   : s.attack_topk_intersection < s.random_topk_intersection;
  if (!s.stronger) {
    TORCH_WARN(fn, ": the attack is not stronger than the random-sign baseline at the same "
               "budget on ", s.samples, " samples (top-k intersection ",
               s.attack_topk_intersection, " vs ", s.random_topk_intersection, ", Kendall's tau ",
               s.attack_kendall, " vs ", s.random_kendall,
               "): its results understate the map's fragility. Check the surrogate's agreement "
               "with the model (AttackResult::surrogate_agreement; rar::choose_surrogate_beta), "
               "the explainer, and the number of iterations and the step size");
  }
  return s;
}

}  // namespace rar
