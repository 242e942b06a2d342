#pragma once
/// @file
/// Choosing the smooth surrogate's β by its fidelity: the attribution attack follows the
/// gradient of the surrogate's map, so a surrogate that does not predict the model's class is a
/// poor guide and makes the model look more robust than it is (docs/guide.md, "Surrogate
/// fidelity"). `rar::choose_surrogate_beta` measures the agreement of `rar::smooth_surrogate`
/// with the model along a ladder of β and returns the smallest β whose agreement reaches a
/// threshold.

#include <rar/core/model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/nn/surrogate.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace rar {

/// Options of `rar::choose_surrogate_beta`.
struct SurrogateBetaOptions {
  /// The β tried, in increasing order (the smallest one that reaches `threshold` is chosen).
  RAR_ARG(std::vector<double>, ladder) = std::vector<double>{1, 3, 10, 30, 100, 300};
  /// Share of the inputs on which the surrogate must predict the model's class, in (0, 1].
  /// 0.99 by default: on a natural Fashion-MNIST CNN, β = 10 agreed on 96 % of 50 images and
  /// the attack reached IN 48.1 %, against 42.8 % with β = 30 (100 %) on the same images.
  RAR_ARG(double, threshold) = 0.99;
};

/// What `rar::choose_surrogate_beta` measured and chose.
struct SurrogateBetaChoice {
  /// The chosen β: the smallest β of the ladder whose agreement reaches the threshold, or the
  /// ladder's largest β when none does (then `reached` is false).
  double beta = 0;
  /// The chosen β's agreement: the share of inputs where the surrogate predicts the model's class.
  double agreement = 0;
  /// Whether `agreement` reaches the threshold.
  bool reached = false;
  /// The agreement of every β tried, in the ladder's order (the ladder stops at the chosen β).
  std::vector<double> agreements;
};

/// The smallest β of a ladder at which `rar::smooth_surrogate(model, β)` predicts the model's
/// class on at least `threshold` of the inputs.
///
/// The attribution attack differentiates the surrogate's map. With β too small the surrogate is
/// a different classifier (e.g. 8 % agreement at β = 1 for a natural Fashion-MNIST ResNet), the
/// attack follows the wrong gradient and the model looks robust. With β too large the surrogate
/// approaches the ReLU network, whose map has no useful second derivative. The smallest β
/// with high agreement is the usual choice. Costs one no-grad forward of the model and one of the
/// surrogate per β tried.
///
/// Example:
/// @code
/// auto choice = rar::choose_surrogate_beta(net, x_test);   // ladder 1, 3, 10, ..., 99 %
/// auto smooth = rar::smooth_surrogate(net, choice.beta);
/// auto r = rar::attribution_attack(net, smooth, rar::explain::integrated_gradients(), x, y);
/// @endcode
/// @param model any model whose nonlinearities `rar::smooth_surrogate` can smooth
/// @param input batch `[N, ...]` (e.g. the images to attack), finite
/// @param options ladder (increasing, each > 0), threshold in (0, 1]
/// @return the chosen β, its agreement and the agreement of each β tried
template <class Model>
SurrogateBetaChoice choose_surrogate_beta(Model&& model, const torch::Tensor& input,
                                          const SurrogateBetaOptions& options = {}) {
  const char* fn = "rar::choose_surrogate_beta";
  detail::check_input(fn, "input", input);
  const auto& ladder = options.ladder();
  TORCH_CHECK(!ladder.empty(), fn, ": ladder must hold at least one beta");
  for (size_t i = 0; i < ladder.size(); ++i) {
    TORCH_CHECK(std::isfinite(ladder[i]) && ladder[i] > 0, fn,
                ": every beta of the ladder must be finite and > 0, got ", ladder[i], " at ", i);
    TORCH_CHECK(i == 0 || ladder[i] > ladder[i - 1], fn,
                ": the ladder must increase, got ", ladder[i - 1], " then ", ladder[i]);
  }
  TORCH_CHECK(options.threshold() > 0 && options.threshold() <= 1, fn,
              ": threshold must lie in (0, 1], got ", options.threshold());
  torch::NoGradGuard no_grad;
  const torch::Tensor x = input.detach();
  const torch::Tensor predicted = call_model(model, x).argmax(1);
  SurrogateBetaChoice choice;
  for (const double beta : ladder) {
    auto smooth = smooth_surrogate(model, beta);
    const double agreement =
        (call_model(smooth, x).argmax(1) == predicted).to(torch::kDouble).mean().template item<double>();
    choice.agreements.push_back(agreement);
    choice.beta = beta;
    choice.agreement = agreement;
    if (agreement >= options.threshold()) {
      choice.reached = true;
      break;
    }
  }
  return choice;
}

/// A surrogate chosen by the attack itself: passed as the surrogate of
/// `rar::attribution_attack`, it makes the attack call `rar::choose_surrogate_beta` on the
/// attack's input and differentiate `rar::smooth_surrogate(model, β)` with the chosen β, which
/// the result reports in `AttackResult::surrogate_beta`.
///
/// Example:
/// @code
/// auto r = rar::attribution_attack(net, rar::auto_surrogate(), ig, x, y, opts);
/// std::cout << "beta " << r.surrogate_beta << ", agreement "
///           << r.surrogate_agreement.to(torch::kDouble).mean().item<double>() << "\n";
/// @endcode
struct AutoSurrogate {
  /// The ladder and the agreement threshold of the choice.
  SurrogateBetaOptions options;
};

/// An `AutoSurrogate`: the attack chooses the surrogate's β by agreement on its input.
/// @param options ladder (increasing, each > 0) and threshold in (0, 1]
inline AutoSurrogate auto_surrogate(const SurrogateBetaOptions& options = {}) {
  return AutoSurrogate{options};
}

namespace detail {
/// Whether `T` (after decay) is `rar::AutoSurrogate`.
template <class T>
inline constexpr bool is_auto_surrogate_v = std::is_same_v<std::decay_t<T>, AutoSurrogate>;
}  // namespace detail

}  // namespace rar
