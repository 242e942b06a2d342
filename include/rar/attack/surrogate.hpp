#pragma once
/// @file
/// Smooth surrogates of ReLU networks for attribution attacks: the same weights with every
/// ReLU replaced by a softplus (Ghorbani, Abid, Zou, "Interpretation of Neural Networks is
/// Fragile", AAAI 2019; Chen et al., "Robust Attribution Regularization", NeurIPS 2019).
///
/// The gradient of a ReLU network's attribution map w.r.t. its input is zero almost everywhere
/// (the second derivative of ReLU vanishes), so attacks on attributions differentiate a copy of
/// the network in which each ReLU is smoothed.

#include <rar/detail/arg.hpp>

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace rar {

/// Options for `rar::LeakySoftplus`.
///
/// Example:
/// @code
/// rar::LeakySoftplus act(rar::LeakySoftplusOptions().beta(10).negative_slope(0.1));
/// @endcode
struct LeakySoftplusOptions {
  /// Sharpness β > 0 of the softplus: softplus_β(x) = log(1 + exp(βx)) / β → ReLU as β → ∞.
  RAR_ARG(double, beta) = 1.0;
  /// Weight a ∈ [0, 1] of the linear part (the slope as x → −∞).
  RAR_ARG(double, negative_slope) = 0.0;
  /// Above β·x > threshold the softplus is computed as x (as `torch::nn::Softplus`).
  RAR_ARG(double, threshold) = 20.0;
};

/// The smooth counterpart of `LeakyReLU(a)`: f(x) = a·x + (1 − a)·softplus_β(x).
///
/// LeakyReLU(a)(x) = a·x + (1 − a)·relu(x), so f → LeakyReLU(a) as β → ∞; with a = 0 it is
/// `torch::nn::Softplus(β)`. The GTSRB and Flower networks of Chen et al. (NeurIPS 2019) use
/// LeakyReLU(0.1) and attack through 0.1·x + 0.9·softplus(x) (their `_softplus(x, 0.1)`).
///
/// Example:
/// @code
/// rar::LeakySoftplus act(rar::LeakySoftplusOptions().beta(10).negative_slope(0.1));
/// torch::Tensor y = act(torch::linspace(-1, 1, 5));
/// @endcode
class LeakySoftplusImpl : public torch::nn::Cloneable<LeakySoftplusImpl> {
 public:
  /// Builds the activation; throws c10::Error for β ≤ 0 or a slope outside [0, 1].
  /// @param options_ beta (> 0), negative_slope (in [0, 1]), threshold
  explicit LeakySoftplusImpl(const LeakySoftplusOptions& options_ = {}) : options(options_) {
    TORCH_CHECK(std::isfinite(options.beta()) && options.beta() > 0,
                "rar::LeakySoftplus: beta must be > 0, got ", options.beta());
    TORCH_CHECK(options.negative_slope() >= 0 && options.negative_slope() <= 1,
                "rar::LeakySoftplus: negative_slope must be in [0, 1], got ",
                options.negative_slope());
  }

  /// No parameters or buffers.
  void reset() override {}

  /// a·x + (1 − a)·softplus_β(x), elementwise.
  /// @param input any tensor
  /// @return the activation, same shape, dtype and device
  torch::Tensor forward(const torch::Tensor& input) {
    const double a = options.negative_slope();
    const torch::Tensor smooth = torch::softplus(input, options.beta(), options.threshold());
    if (a == 0) return smooth;
    return a * input + (1 - a) * smooth;
  }

  /// Prints `rar::LeakySoftplus(beta=…, negative_slope=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::LeakySoftplus(beta=" << options.beta()
           << ", negative_slope=" << options.negative_slope() << ")";
  }

  /// The options this module was built with.
  LeakySoftplusOptions options;
};

/// Module holder for `LeakySoftplusImpl` (see there).
///
/// Example: `torch::nn::Sequential net(torch::nn::Linear(4, 8), rar::LeakySoftplus(), torch::nn::Linear(8, 2));`
TORCH_MODULE(LeakySoftplus);

namespace detail {

/// The surrogate of one child of a Sequential: ReLU and LeakyReLU replaced, everything else
/// deep-copied. (LibTorch cannot hold a Sequential directly inside a Sequential; Sequentials
/// nested inside other modules are reported by `softplus_surrogate`.)
inline torch::nn::AnyModule surrogate_child(const torch::nn::AnyModule& child, double beta,
                                            double linear_mix) {
  const std::shared_ptr<torch::nn::Module> ptr = child.ptr();
  if (std::dynamic_pointer_cast<torch::nn::ReLUImpl>(ptr)) {
    if (linear_mix == 0)
      return torch::nn::AnyModule(torch::nn::Softplus(torch::nn::SoftplusOptions().beta(beta)));
    return torch::nn::AnyModule(
        LeakySoftplus(LeakySoftplusOptions().beta(beta).negative_slope(linear_mix)));
  }
  if (const auto leaky = std::dynamic_pointer_cast<torch::nn::LeakyReLUImpl>(ptr)) {
    const double slope = leaky->options.negative_slope();
    TORCH_CHECK(slope >= 0 && slope <= 1,
                "rar::softplus_surrogate: a LeakyReLU's negative_slope must be in [0, 1] to be "
                "smoothed, got ",
                slope);
    return torch::nn::AnyModule(
        LeakySoftplus(LeakySoftplusOptions().beta(beta).negative_slope(slope)));
  }
  return child.clone();
}

/// Whether `m` is an activation `softplus_surrogate` replaces.
inline bool is_relu_like(const std::shared_ptr<torch::nn::Module>& m) {
  return std::dynamic_pointer_cast<torch::nn::ReLUImpl>(m) != nullptr ||
         std::dynamic_pointer_cast<torch::nn::LeakyReLUImpl>(m) != nullptr;
}

}  // namespace detail

/// A smooth copy of a ReLU network: every `ReLU` becomes `Softplus(β)` (or, with
/// `linear_mix` = a > 0, a·x + (1 − a)·softplus_β(x)), every `LeakyReLU(a)` becomes
/// a·x + (1 − a)·softplus_β(x) with its own slope a; every other child is deep-copied as is.
/// (LibTorch cannot hold a Sequential directly inside a Sequential, so the activations to
/// replace are the Sequential's own children; a ReLU or LeakyReLU found deeper, inside another
/// module, cannot be swapped from outside and raises an error rather than leaving a surrogate
/// with zero curvature there.)
///
/// This is the surrogate network of Ghorbani et al. (AAAI 2019) and Chen et al. (NeurIPS 2019):
/// the same weights with smooth activations, whose attribution maps have useful input gradients
/// (a ReLU network's do not). Chen et al. use softplus with β = 1 (MNIST, Fashion-MNIST) and
/// 0.1·x + 0.9·softplus(x) for their LeakyReLU(0.1) networks (GTSRB, Flower). Larger β follows
/// the real network more closely (outputs converge as β → ∞) while keeping a usable curvature;
/// β ≈ 10 attacks a small Fashion-MNIST CNN better than β = 1. Note that with `linear_mix`
/// a > 0 a ReLU's surrogate tends to LeakyReLU(a), not to ReLU, as β grows.
///
/// The copy shares no parameters or buffers with `net` (re-copy it after training steps), has
/// the same dtype and device, and keeps each module's train/eval mode and each parameter's
/// `requires_grad` flag. Activations computed inside a child's `forward` (a `torch::relu` call,
/// a `Functional(torch::relu)`) are not modules and cannot be seen: they stay as they are.
///
/// Example:
/// @code
/// torch::nn::Sequential net(torch::nn::Linear(784, 100), torch::nn::ReLU(),
///                           torch::nn::Linear(100, 10));
/// torch::nn::Sequential smooth = rar::softplus_surrogate(net, /*beta=*/10.0);
/// auto result = rar::attribution_attack(net, smooth, method, x, y);
/// @endcode
/// @param net the network, a `torch::nn::Sequential` whose activations are direct children
/// @param beta softplus sharpness β > 0
/// @param linear_mix weight a ∈ [0, 1] of the linear part for ReLUs: a·x + (1 − a)·softplus_β(x)
///        (0: plain `Softplus(β)`)
/// @return a new Sequential with the same structure and child names
inline torch::nn::Sequential softplus_surrogate(const torch::nn::Sequential& net, double beta,
                                                double linear_mix = 0.0) {
  const char* fn = "rar::softplus_surrogate";
  TORCH_CHECK(!net.is_empty(), fn, ": net must be a constructed Sequential, got an empty holder");
  TORCH_CHECK(std::isfinite(beta) && beta > 0, fn, ": beta must be > 0, got ", beta);
  TORCH_CHECK(linear_mix >= 0 && linear_mix <= 1, fn, ": linear_mix must be in [0, 1], got ",
              linear_mix);
  torch::nn::Sequential out;
  const auto names = net->named_children().keys();
  TORCH_INTERNAL_ASSERT(names.size() == net->size());
  size_t index = 0;
  for (const auto& child : *net)
    out->push_back(names[index++], detail::surrogate_child(child, beta, linear_mix));
  // A ReLU inside another module (e.g. a Sequential member of a custom module) cannot be swapped
  // from outside; a surrogate that kept it would have zero second derivatives there.
  for (const auto& item : out->named_modules()) {
    TORCH_CHECK(!detail::is_relu_like(item.value()), fn, ": the ", item.value()->name(), " '",
                item.key(),
                "' sits inside a child module, not directly in the Sequential, and cannot be "
                "replaced; list the layers directly in the Sequential or build the smooth copy "
                "by hand");
  }
  // Same structure, activations swapped for leaf modules: the pre-order module lists and the
  // parameter lists correspond one to one. train() recurses, so parents are set before their
  // children (pre-order) and every module ends with its own mode.
  const auto src_modules = net->modules();
  const auto dst_modules = out->modules();
  TORCH_INTERNAL_ASSERT(src_modules.size() == dst_modules.size());
  for (size_t i = 0; i < src_modules.size(); ++i)
    dst_modules[i]->train(src_modules[i]->is_training());
  const auto src_params = net->parameters();
  const auto dst_params = out->parameters();
  TORCH_INTERNAL_ASSERT(src_params.size() == dst_params.size());
  for (size_t i = 0; i < src_params.size(); ++i)
    dst_params[i].set_requires_grad(src_params[i].requires_grad());
  return out;
}

}  // namespace rar
