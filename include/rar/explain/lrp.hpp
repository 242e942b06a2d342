#pragma once
/// @file
/// Layer-wise relevance propagation as an explainer (see `rar/core/explainer.hpp`), so every
/// tool (attribution attacks, max-sensitivity, the randomization test, SmoothGrad) accepts it.

#include <rar/attribution/lrp.hpp>
#include <rar/core/explainer.hpp>
#include <rar/explain/explainer.hpp>

#include <torch/torch.h>

#include <utility>

namespace rar {
namespace explain {

namespace detail {
RAR_EXPLAIN_METHOD(LRPMethod, LRPOptions, rar::lrp, "rar::explain::lrp", true, nullptr);
}  // namespace detail

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
using LRP = OptionsExplainer<LRPOptions, detail::LRPMethod>;

/// @param options default_rule and rules per layer
/// @return an LRP explainer
inline LRP lrp(LRPOptions options = {}) { return LRP(std::move(options)); }

}  // namespace explain
}  // namespace rar
