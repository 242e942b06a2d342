#pragma once
/// @file
/// DeepLIFT with the rescale rule (Shrikumar, Greenside, Kundaje, "Learning Important Features
/// Through Propagating Activation Differences", ICML 2017) for `torch::nn::Sequential` networks.

#include <rar/attribution/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace rar {

/// Options for `rar::deeplift`.
///
/// Example:
/// @code
/// auto attr = rar::deeplift(net, x, rar::DeepLiftOptions().target(y).baseline(reference));
/// @endcode
struct DeepLiftOptions {
  /// The reference input x'. Undefined: zeros. Broadcastable to the input, same dtype/device.
  RAR_ARG(torch::Tensor, baseline);
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the network output must be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Below this |x − x'| a nonlinearity uses its plain gradient instead of Δy/Δx (Captum: 1e-10).
  RAR_ARG(double, eps) = 1e-10;
};

namespace detail {

/// How DeepLIFT propagates multipliers through one layer.
enum class DeepLiftRule { linear, rescale, maxpool1d, maxpool2d };

/// One leaf module of a (possibly nested) Sequential with its DeepLIFT rule.
struct DeepLiftLayer {
  torch::nn::AnyModule module;
  DeepLiftRule rule;
  std::string name;
};

template <class Impl>
bool is_a(const std::shared_ptr<torch::nn::Module>& m) {
  return std::dynamic_pointer_cast<Impl>(m) != nullptr;
}

/// Flattens nested Sequentials into their leaf modules and assigns each its rule;
/// an unsupported module raises an error naming it and its position.
inline void deeplift_layers(const torch::nn::Sequential& net, const std::string& prefix,
                            std::vector<DeepLiftLayer>& layers) {
  using namespace torch::nn;
  size_t index = 0;
  for (const auto& any : *net) {
    const std::string name = prefix + std::to_string(index++);
    const auto m = any.ptr();
    if (auto seq = std::dynamic_pointer_cast<SequentialImpl>(m)) {
      deeplift_layers(Sequential(seq), name + ".", layers);
      continue;
    }
    DeepLiftRule rule;
    if (is_a<ReLUImpl>(m) || is_a<LeakyReLUImpl>(m) || is_a<ELUImpl>(m) ||
        is_a<SigmoidImpl>(m) || is_a<TanhImpl>(m) || is_a<SoftplusImpl>(m)) {
      rule = DeepLiftRule::rescale;
    } else if (is_a<MaxPool1dImpl>(m)) {
      rule = DeepLiftRule::maxpool1d;
    } else if (is_a<MaxPool2dImpl>(m)) {
      rule = DeepLiftRule::maxpool2d;
    } else if (is_a<BatchNorm1dImpl>(m) || is_a<BatchNorm2dImpl>(m)) {
      TORCH_CHECK(!m->is_training(), "rar::deeplift: ", m->name(), " at position ", name,
                  " is in training mode; DeepLIFT treats batch norm as a fixed affine map, so "
                  "call eval() on the network first");
      rule = DeepLiftRule::linear;
    } else if (is_a<LinearImpl>(m) || is_a<Conv1dImpl>(m) || is_a<Conv2dImpl>(m) ||
               is_a<FlattenImpl>(m) || is_a<UnflattenImpl>(m) || is_a<DropoutImpl>(m) ||
               is_a<Dropout2dImpl>(m) || is_a<AvgPool1dImpl>(m) || is_a<AvgPool2dImpl>(m) ||
               is_a<AdaptiveAvgPool1dImpl>(m) || is_a<AdaptiveAvgPool2dImpl>(m) ||
               is_a<IdentityImpl>(m)) {
      rule = DeepLiftRule::linear;
    } else {
      TORCH_CHECK(false, "rar::deeplift: unsupported module ", m->name(), " at position ", name,
                  "; supported: Linear, Conv1d/2d, Flatten, Unflatten, Dropout, BatchNorm1d/2d "
                  "(eval), AvgPool1d/2d, AdaptiveAvgPool1d/2d, Identity, ReLU, LeakyReLU, ELU, "
                  "Sigmoid, Tanh, Softplus, MaxPool1d/2d and nested Sequential");
    }
    layers.push_back({any, rule, name});
  }
}

/// Doubles a half-batch difference so it lines up with the [input; reference] batch.
inline torch::Tensor twice(const torch::Tensor& t) { return torch::cat({t, t}); }

/// Captum's max-pool rule: the cross-maximum of the input and reference outputs is
/// redistributed through the pooling indices of both halves and divided by Δx.
inline torch::Tensor maxpool_multipliers(const DeepLiftLayer& layer, const torch::Tensor& in,
                                         const torch::Tensor& out, const torch::Tensor& grad_out,
                                         const torch::Tensor& grad_in, double eps) {
  torch::NoGradGuard no_grad;
  const auto in_halves = in.chunk(2);
  const auto out_halves = out.chunk(2);
  const torch::Tensor delta_in = twice(in_halves[0] - in_halves[1]);
  const torch::Tensor cross_max = torch::max(out_halves[0], out_halves[1]);
  const torch::Tensor delta_out =
      torch::cat({cross_max - out_halves[1], out_halves[0] - cross_max});
  torch::Tensor unpooled;
  if (layer.rule == DeepLiftRule::maxpool2d) {
    auto pool = std::dynamic_pointer_cast<torch::nn::MaxPool2dImpl>(layer.module.ptr());
    const torch::Tensor indices = std::get<1>(pool->forward_with_indices(in));
    unpooled = torch::max_unpool2d(grad_out * delta_out, indices, {in.size(-2), in.size(-1)});
  } else {
    auto pool = std::dynamic_pointer_cast<torch::nn::MaxPool1dImpl>(layer.module.ptr());
    const torch::Tensor indices = std::get<1>(pool->forward_with_indices(in));
    unpooled = torch::max_unpool2d((grad_out * delta_out).unsqueeze(-1), indices.unsqueeze(-1),
                                   {in.size(-1), 1})
                   .squeeze(-1);
  }
  const auto unpooled_halves = unpooled.chunk(2);
  const torch::Tensor summed = twice(unpooled_halves[0] + unpooled_halves[1]);
  return torch::where(delta_in.abs() < eps, grad_in, summed / delta_in);
}

}  // namespace detail

/// DeepLIFT attributions with the rescale rule for a Sequential network.
///
/// The input and the reference are run as one batch [x; x']. Linear layers (Linear, Conv,
/// pooling by averages, batch norm in eval mode, ...) propagate gradients as usual; each
/// elementwise nonlinearity y = f(z) replaces its derivative by the multiplier
/// (f(z) − f(z'))/(z − z') (its plain derivative where |z − z'| < eps); max-pooling uses
/// Captum's cross-maximum rule. attributions = (x − x') ⊙ multipliers, which satisfy
/// summation-to-delta: Σ attributions = F(x) − F(x'). Matches Captum 0.7's `DeepLift`.
/// Costs two forwards (one batch of 2N) and one backward. The network's mode and parameters are
/// left as they are.
///
/// Example:
/// @code
/// torch::nn::Sequential net(torch::nn::Linear(4, 8), torch::nn::ReLU(), torch::nn::Linear(8, 3));
/// auto attr = rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
/// @endcode
/// @param net the network; nested Sequentials are flattened
/// @param input batch `[N, ...]`, float32 or float64
/// @param options baseline, target, eps
/// @return attributions, shape/dtype/device of `input`
inline torch::Tensor deeplift(torch::nn::Sequential& net, const torch::Tensor& input,
                              const DeepLiftOptions& options = {}) {
  const char* fn = "rar::deeplift";
  detail::check_batch(fn, "input", input);
  TORCH_CHECK(options.eps() >= 0, fn, ": eps must be >= 0, got ", options.eps());
  const torch::Tensor baseline = detail::expand_baseline(fn, options.baseline(), input);
  const int64_t n = input.size(0);
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());

  std::vector<detail::DeepLiftLayer> layers;
  detail::deeplift_layers(net, "", layers);
  TORCH_CHECK(!layers.empty(), fn, ": the network has no layers");

  torch::AutoGradMode grad_mode(true);
  // Forward: keep each layer's input (as a leaf) and output, so each local backward is one VJP.
  std::vector<torch::Tensor> ins, outs;
  ins.reserve(layers.size());
  outs.reserve(layers.size());
  torch::Tensor a = torch::cat({input, baseline}).detach();
  for (auto& layer : layers) {
    torch::Tensor leaf = a.detach().requires_grad_(true);
    // Clone before nonlinearities so an in-place activation does not overwrite the leaf.
    torch::Tensor out = layer.module.forward(
        layer.rule == detail::DeepLiftRule::linear ? leaf : leaf.clone());
    ins.push_back(leaf);
    outs.push_back(out);
    a = out;
  }

  // The gradient at the output: the target's logit of both halves (Captum repeats the target).
  const torch::Tensor& top = outs.back();
  torch::Tensor grad;
  if (target.defined()) {
    TORCH_CHECK(top.dim() == 2, fn, ": with a target the network output must be [N, C], got ",
                top.sizes());
    const auto index = detail::gather_target(fn, top, torch::cat({target, target}));
    grad = torch::zeros_like(top).scatter_(1, index, 1.0);
  } else {
    TORCH_CHECK(top.dim() == 1, fn, ": without a target the network output must be [N], got ",
                top.sizes());
    grad = torch::ones_like(top);
  }

  for (size_t i = layers.size(); i-- > 0;) {
    const torch::Tensor& in = ins[i];
    const torch::Tensor& out = outs[i];
    torch::Tensor plain =
        out.is_same(in) ? grad
                        : torch::autograd::grad({out}, {in}, {grad}, /*retain_graph=*/false,
                                                /*create_graph=*/false, /*allow_unused=*/true)[0];
    if (!plain.defined()) plain = torch::zeros_like(in);
    switch (layers[i].rule) {
      case detail::DeepLiftRule::linear:
        grad = plain;
        break;
      case detail::DeepLiftRule::rescale: {
        torch::NoGradGuard no_grad;
        const auto in_halves = in.chunk(2);
        const auto out_halves = out.chunk(2);
        const torch::Tensor delta_in = detail::twice(in_halves[0] - in_halves[1]);
        const torch::Tensor delta_out = detail::twice(out_halves[0] - out_halves[1]);
        grad = torch::where(delta_in.abs() < options.eps(), plain, grad * delta_out / delta_in);
        break;
      }
      case detail::DeepLiftRule::maxpool1d:
      case detail::DeepLiftRule::maxpool2d:
        grad = detail::maxpool_multipliers(layers[i], in.detach(), out.detach(), grad, plain,
                                           options.eps());
        break;
    }
  }
  return ((input - baseline) * grad.slice(0, 0, n)).detach();
}

}  // namespace rar
