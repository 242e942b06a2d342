#pragma once
/// @file
/// Layer-wise relevance propagation as an explainer (see `rar/core/explainer.hpp`), so every
/// tool (attribution attacks, max-sensitivity, the randomization test, SmoothGrad) accepts it.

#include <rar/attribution/lrp.hpp>
#include <rar/core/explainer.hpp>

#include <torch/torch.h>

#include <utility>

namespace rar {
namespace explain {

/// LRP as an explainer (see `rar::lrp`): target and create_graph come from each call, the rules
/// from the options. With `create_graph` the relevance is differentiated as computed (the
/// rules' divisions and products; sign(z′) and max-pool routing are piecewise constant), which
/// is the derivative of the map almost everywhere. Models that are not a `torch::nn::Sequential`
/// raise an error naming DeepLIFT and Integrated Gradients as the methods for them.
///
/// Example:
/// @code
/// auto lrp = rar::explain::lrp(rar::LRPOptions().rule(0, rar::LRPRule::gamma(0.25)));
/// torch::Tensor r = lrp(net, x, y, /*create_graph=*/false);
/// @endcode
class LRP {
 public:
  /// @param options default_rule and rules per layer (target and create_graph come from each
  ///        call)
  explicit LRP(LRPOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the LRP options
  const LRPOptions& options() const noexcept { return options_; }
  /// Relevance of `model` at `input` for `target`.
  /// @param model a `torch::nn::Sequential`
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (relevance differentiable w.r.t. the input)
  /// @return relevance of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    LRPOptions o = options_;
    if (target.defined()) o.target(target);
    o.create_graph(create_graph);
    return rar::lrp(model, input, o);
  }

 private:
  LRPOptions options_;
};

/// @param options default_rule and rules per layer
/// @return an LRP explainer
inline LRP lrp(LRPOptions options = {}) { return LRP(std::move(options)); }

}  // namespace explain
}  // namespace rar
