#pragma once
/// @file
/// Drop-in activation modules: `rar::nn::ReLU`, `LeakyReLU`, `ELU`, `Sigmoid`, `Tanh`,
/// `Softplus`, `GELU` and `SiLU`, built like their `torch::nn` namesakes (same options structs,
/// module holders). Outside a `rar::nn::Scope` they compute exactly what `torch::nn` computes; the
/// library's methods switch them (DeepLIFT's rescale rule, the softplus surrogate, guided
/// backprop), so that every method works on any model built with them: residual adds,
/// concatenation, custom `forward`s.

#include <torch/torch.h>

#include <ostream>
#include <rar/nn/functional.hpp>

namespace rar {
namespace nn {

/// Drop-in for `torch::nn::ReLU` (see `rar::nn::functional::relu`).
///
/// Example:
/// @code
/// struct BlockImpl : torch::nn::Module {
///   torch::nn::Conv2d conv{nullptr};
///   rar::nn::ReLU relu{nullptr};
///   BlockImpl() : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8,
///   3).padding(1)))),
///                 relu(register_module("relu", rar::nn::ReLU())) {}
///   torch::Tensor forward(const torch::Tensor& x) { return relu(x + conv(x)); }
/// };
/// @endcode
class ReLUImpl : public torch::nn::Cloneable<ReLUImpl> {
 public:
  /// @param options_ inplace (honoured outside scopes)
  explicit ReLUImpl(const torch::nn::ReLUOptions& options_ = {}) : options(options_) {}
  /// No parameters or buffers.
  void reset() override {}
  /// max(x, 0) outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(torch::Tensor input) { return functional::relu(std::move(input), options); }
  /// Prints `rar::nn::ReLU()`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::ReLU(" << (options.inplace() ? "inplace=true" : "") << ")";
  }
  /// The options this module was built with.
  torch::nn::ReLUOptions options;
};
/// Module holder for `rar::nn::ReLUImpl`: `rar::nn::ReLU()` makes one.
TORCH_MODULE(ReLU);

/// Drop-in for `torch::nn::LeakyReLU` (see `rar::nn::functional::leaky_relu`).
///
/// Example: `rar::nn::LeakyReLU act(torch::nn::LeakyReLUOptions().negative_slope(0.1));`
class LeakyReLUImpl : public torch::nn::Cloneable<LeakyReLUImpl> {
 public:
  /// @param options_ negative_slope, inplace (honoured outside scopes)
  explicit LeakyReLUImpl(const torch::nn::LeakyReLUOptions& options_ = {}) : options(options_) {}
  /// No parameters or buffers.
  void reset() override {}
  /// x for x > 0, negative_slope·x otherwise, outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(torch::Tensor input) {
    return functional::leaky_relu(std::move(input), options);
  }
  /// Prints `rar::nn::LeakyReLU(negative_slope=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::LeakyReLU(negative_slope=" << options.negative_slope() << ")";
  }
  /// The options this module was built with.
  torch::nn::LeakyReLUOptions options;
};
/// Module holder for `rar::nn::LeakyReLUImpl`.
TORCH_MODULE(LeakyReLU);

/// Drop-in for `torch::nn::ELU` (see `rar::nn::functional::elu`).
///
/// Example: `rar::nn::ELU act(torch::nn::ELUOptions().alpha(0.5));`
class ELUImpl : public torch::nn::Cloneable<ELUImpl> {
 public:
  /// @param options_ alpha, inplace (honoured outside scopes)
  explicit ELUImpl(const torch::nn::ELUOptions& options_ = {}) : options(options_) {}
  /// No parameters or buffers.
  void reset() override {}
  /// x for x > 0, alpha·(exp(x) − 1) otherwise, outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(torch::Tensor input) { return functional::elu(std::move(input), options); }
  /// Prints `rar::nn::ELU(alpha=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::ELU(alpha=" << options.alpha() << ")";
  }
  /// The options this module was built with.
  torch::nn::ELUOptions options;
};
/// Module holder for `rar::nn::ELUImpl`.
TORCH_MODULE(ELU);

/// Drop-in for `torch::nn::Sigmoid` (see `rar::nn::functional::sigmoid`).
///
/// Example: `torch::nn::Sequential head(torch::nn::Linear(8, 1), rar::nn::Sigmoid());`
class SigmoidImpl : public torch::nn::Cloneable<SigmoidImpl> {
 public:
  SigmoidImpl() = default;
  /// No parameters or buffers.
  void reset() override {}
  /// 1 / (1 + exp(−x)) outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(const torch::Tensor& input) { return functional::sigmoid(input); }
  /// Prints `rar::nn::Sigmoid()`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override { stream << "rar::nn::Sigmoid()"; }
};
/// Module holder for `rar::nn::SigmoidImpl`.
TORCH_MODULE(Sigmoid);

/// Drop-in for `torch::nn::Tanh` (see `rar::nn::functional::tanh`).
///
/// Example: `torch::nn::Sequential mlp(torch::nn::Linear(4, 8), rar::nn::Tanh(),
/// torch::nn::Linear(8, 2));`
class TanhImpl : public torch::nn::Cloneable<TanhImpl> {
 public:
  TanhImpl() = default;
  /// No parameters or buffers.
  void reset() override {}
  /// tanh(x) outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(const torch::Tensor& input) { return functional::tanh(input); }
  /// Prints `rar::nn::Tanh()`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override { stream << "rar::nn::Tanh()"; }
};
/// Module holder for `rar::nn::TanhImpl`.
TORCH_MODULE(Tanh);

/// Drop-in for `torch::nn::Softplus` (see `rar::nn::functional::softplus`).
///
/// Example: `rar::nn::Softplus act(torch::nn::SoftplusOptions().beta(2));`
class SoftplusImpl : public torch::nn::Cloneable<SoftplusImpl> {
 public:
  /// @param options_ beta, threshold
  explicit SoftplusImpl(const torch::nn::SoftplusOptions& options_ = {}) : options(options_) {}
  /// No parameters or buffers.
  void reset() override {}
  /// log(1 + exp(βx)) / β outside a scope (x above the threshold).
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(const torch::Tensor& input) { return functional::softplus(input, options); }
  /// Prints `rar::nn::Softplus(beta=…, threshold=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::Softplus(beta=" << options.beta() << ", threshold=" << options.threshold()
           << ")";
  }
  /// The options this module was built with.
  torch::nn::SoftplusOptions options;
};
/// Module holder for `rar::nn::SoftplusImpl`.
TORCH_MODULE(Softplus);

/// Drop-in for `torch::nn::GELU` (see `rar::nn::functional::gelu`): the rescale rule under
/// DeepLIFT, unchanged in the softplus surrogate (GELU is already smooth).
///
/// Example: `rar::nn::GELU act(torch::nn::GELUOptions().approximate("tanh"));`
class GELUImpl : public torch::nn::Cloneable<GELUImpl> {
 public:
  /// @param options_ approximate ("none" or "tanh")
  explicit GELUImpl(const torch::nn::GELUOptions& options_ = {}) : options(options_) {
    detail::gelu_approximation("rar::nn::GELU", options.approximate());
  }
  /// No parameters or buffers.
  void reset() override {}
  /// x·Φ(x) (or its tanh approximation) outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(const torch::Tensor& input) { return functional::gelu(input, options); }
  /// Prints `rar::nn::GELU(approximate=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::GELU(approximate=" << options.approximate() << ")";
  }
  /// The options this module was built with.
  torch::nn::GELUOptions options;
};
/// Module holder for `rar::nn::GELUImpl`.
TORCH_MODULE(GELU);

/// Drop-in for `torch::nn::SiLU` (see `rar::nn::functional::silu`): the rescale rule under
/// DeepLIFT, unchanged in the softplus surrogate (SiLU is already smooth).
///
/// Example: `torch::nn::Sequential mlp(torch::nn::Linear(4, 8), rar::nn::SiLU(),
/// torch::nn::Linear(8, 2));`
class SiLUImpl : public torch::nn::Cloneable<SiLUImpl> {
 public:
  SiLUImpl() = default;
  /// No parameters or buffers.
  void reset() override {}
  /// x·σ(x) outside a scope.
  /// @param input any tensor
  /// @return the activation
  torch::Tensor forward(const torch::Tensor& input) { return functional::silu(input); }
  /// Prints `rar::nn::SiLU()`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override { stream << "rar::nn::SiLU()"; }
};
/// Module holder for `rar::nn::SiLUImpl`.
TORCH_MODULE(SiLU);

namespace detail {

/// Whether `m` is one of the `rar::nn` activation modules.
inline bool is_rar_activation(const torch::nn::Module& m) {
  return dynamic_cast<const ReLUImpl*>(&m) != nullptr ||
         dynamic_cast<const LeakyReLUImpl*>(&m) != nullptr ||
         dynamic_cast<const ELUImpl*>(&m) != nullptr ||
         dynamic_cast<const SigmoidImpl*>(&m) != nullptr ||
         dynamic_cast<const TanhImpl*>(&m) != nullptr ||
         dynamic_cast<const SoftplusImpl*>(&m) != nullptr ||
         dynamic_cast<const GELUImpl*>(&m) != nullptr ||
         dynamic_cast<const SiLUImpl*>(&m) != nullptr;
}

/// Which `torch::nn` nonlinearities a method must be able to switch, and so refuses inside a
/// custom module where it cannot.
enum class Sees {
  every,      ///< every nonlinearity (DeepLIFT replaces each derivative)
  nonsmooth,  ///< the kinked ones: ReLU, LeakyReLU, ReLU6, PReLU, Hardtanh (the surrogate)
  relu        ///< ReLU only (guided backprop and deconvolution, like Captum)
};

/// The name of `m` if it is a `torch::nn` nonlinearity that a method with `sees` must switch
/// (one that `rar::nn` replaces, or one that rar's methods cannot see, e.g. Mish), else null.
inline const char* torch_activation_name(const torch::nn::Module& m, Sees sees = Sees::every) {
  namespace tnn = torch::nn;
  if (sees == Sees::relu)
    return dynamic_cast<const tnn::ReLUImpl*>(&m) ? "torch::nn::ReLU" : nullptr;
  if (sees == Sees::nonsmooth) {
    if (dynamic_cast<const tnn::ReLUImpl*>(&m)) return "torch::nn::ReLU";
    if (dynamic_cast<const tnn::LeakyReLUImpl*>(&m)) return "torch::nn::LeakyReLU";
    if (dynamic_cast<const tnn::ReLU6Impl*>(&m)) return "torch::nn::ReLU6";
    if (dynamic_cast<const tnn::PReLUImpl*>(&m)) return "torch::nn::PReLU";
    if (dynamic_cast<const tnn::HardtanhImpl*>(&m)) return "torch::nn::Hardtanh";
    return nullptr;
  }
  if (dynamic_cast<const tnn::ReLUImpl*>(&m)) return "torch::nn::ReLU";
  if (dynamic_cast<const tnn::LeakyReLUImpl*>(&m)) return "torch::nn::LeakyReLU";
  if (dynamic_cast<const tnn::ELUImpl*>(&m)) return "torch::nn::ELU";
  if (dynamic_cast<const tnn::SigmoidImpl*>(&m)) return "torch::nn::Sigmoid";
  if (dynamic_cast<const tnn::TanhImpl*>(&m)) return "torch::nn::Tanh";
  if (dynamic_cast<const tnn::SoftplusImpl*>(&m)) return "torch::nn::Softplus";
  if (dynamic_cast<const tnn::ReLU6Impl*>(&m)) return "torch::nn::ReLU6";
  if (dynamic_cast<const tnn::GELUImpl*>(&m)) return "torch::nn::GELU";
  if (dynamic_cast<const tnn::SiLUImpl*>(&m)) return "torch::nn::SiLU";
  if (dynamic_cast<const tnn::PReLUImpl*>(&m)) return "torch::nn::PReLU";
  if (dynamic_cast<const tnn::HardtanhImpl*>(&m)) return "torch::nn::Hardtanh";
  if (dynamic_cast<const tnn::SELUImpl*>(&m)) return "torch::nn::SELU";
  if (dynamic_cast<const tnn::MishImpl*>(&m)) return "torch::nn::Mish";
  return nullptr;
}

/// Calls `visit(path, module)` for every module below `root` (pre-order, root excluded).
template <class Visit>
void for_each_submodule(const torch::nn::Module& root, const std::string& prefix, Visit&& visit) {
  for (const auto& item : root.named_children()) {
    const std::string path = prefix.empty() ? item.key() : prefix + "." + item.key();
    visit(path, *item.value());
    for_each_submodule(*item.value(), path, visit);
  }
}

}  // namespace detail
}  // namespace nn
}  // namespace rar
