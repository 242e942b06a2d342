#pragma once
/// @file
/// DeepLIFT with the rescale rule (Shrikumar, Greenside, Kundaje, "Learning Important Features
/// Through Propagating Activation Differences", ICML 2017) for `torch::nn::Sequential` networks.

#include <torch/torch.h>

#include <memory>
#include <rar/attribution/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <string>
#include <tuple>
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
  bool inplace = false;  ///< the module overwrites its input (an `inplace` option is set)
};

template <class Impl>
bool is_a(const std::shared_ptr<torch::nn::Module>& m) {
  return std::dynamic_pointer_cast<Impl>(m) != nullptr;
}

/// Whether `m` is an `Impl` whose `inplace` option is set (it would overwrite its input).
template <class Impl>
bool is_inplace(const std::shared_ptr<torch::nn::Module>& m) {
  const auto impl = std::dynamic_pointer_cast<Impl>(m);
  return impl != nullptr && impl->options.inplace();
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
    if (is_a<ReLUImpl>(m) || is_a<LeakyReLUImpl>(m) || is_a<ELUImpl>(m) || is_a<SigmoidImpl>(m) ||
        is_a<TanhImpl>(m) || is_a<SoftplusImpl>(m)) {
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
    const bool inplace = is_inplace<ReLUImpl>(m) || is_inplace<LeakyReLUImpl>(m) ||
                         is_inplace<ELUImpl>(m) || is_inplace<DropoutImpl>(m) ||
                         is_inplace<Dropout2dImpl>(m);
    layers.push_back({any, rule, name, inplace});
  }
}

/// The activations of one layer for the input (x, with its graph) and the reference (r). The
/// reference has one row when it is the same for every sample (broadcast against x's N rows).
struct DeepLiftActivations {
  torch::Tensor in_x, out_x, in_r, out_r;  ///< in_x is a leaf requiring grad
  torch::Tensor indices_x, indices_r;      ///< max-pool indices (max-pool layers only)
};

/// Runs one layer on the input (recording its graph) and on the reference (without).
inline DeepLiftActivations deeplift_forward(DeepLiftLayer& layer, const torch::Tensor& x,
                                            const torch::Tensor& r) {
  DeepLiftActivations a;
  a.in_x = x.detach().requires_grad_(true);
  a.in_r = r;
  const auto module = layer.module.ptr();
  if (layer.rule == DeepLiftRule::maxpool2d || layer.rule == DeepLiftRule::maxpool1d) {
    auto pool = [&](const torch::Tensor& t) {
      return layer.rule == DeepLiftRule::maxpool2d
                 ? std::dynamic_pointer_cast<torch::nn::MaxPool2dImpl>(module)
                       ->forward_with_indices(t)
                 : std::dynamic_pointer_cast<torch::nn::MaxPool1dImpl>(module)
                       ->forward_with_indices(t);
    };
    std::tie(a.out_x, a.indices_x) = pool(a.in_x);
    torch::NoGradGuard no_grad;
    std::tie(a.out_r, a.indices_r) = pool(r);
    return a;
  }
  // An in-place activation would overwrite the leaf (and the reference activations kept for
  // the layer below): it gets copies.
  a.out_x = layer.module.forward(layer.inplace ? a.in_x.clone() : a.in_x);
  torch::NoGradGuard no_grad;
  a.out_r = layer.module.forward(layer.inplace ? r.clone() : r);
  return a;
}

/// Scatters `t` back through max-pool `indices` (broadcast to t's rows) to the pre-pool shape
/// of `like`.
inline torch::Tensor unpool(const torch::Tensor& t, const torch::Tensor& indices,
                            const torch::Tensor& like, bool two_d) {
  const torch::Tensor idx = indices.size(0) == t.size(0) ? indices : indices.expand_as(t);
  if (two_d) return torch::max_unpool2d(t, idx, {like.size(-2), like.size(-1)});
  return torch::max_unpool2d(t.unsqueeze(-1), idx.unsqueeze(-1), {like.size(-1), 1}).squeeze(-1);
}

/// The plain backward of one layer: the vector-Jacobian product of `grad` through its graph.
inline torch::Tensor layer_vjp(const DeepLiftActivations& a, const torch::Tensor& grad) {
  if (a.out_x.is_same(a.in_x)) return grad;
  torch::Tensor plain = torch::autograd::grad({a.out_x}, {a.in_x}, {grad}, /*retain_graph=*/false,
                                              /*create_graph=*/false, /*allow_unused=*/true)[0];
  return plain.defined() ? plain : torch::zeros_like(a.in_x);
}

/// Multipliers below one layer from those above it (`grad`), by the layer's rule.
///
/// Captum runs [x; x'] as one batch and propagates both halves, but every rule hands both
/// halves the same multipliers, so only the input half is propagated here; the max-pool rule
/// routes the reference half's share through the reference's own pooling indices.
inline torch::Tensor deeplift_backward(const DeepLiftLayer& layer, const DeepLiftActivations& a,
                                       const torch::Tensor& grad, double eps) {
  if (layer.rule == DeepLiftRule::linear) return layer_vjp(a, grad);
  torch::Tensor delta_in, out_x, contribution, tiny;
  {
    torch::NoGradGuard no_grad;
    delta_in = a.in_x.detach() - a.in_r;
    out_x = a.out_x.detach();
    if (layer.rule == DeepLiftRule::rescale) {
      contribution = out_x - a.out_r;
      contribution.mul_(grad);
    } else {
      // Captum's rule: the cross-maximum of the input and reference outputs, redistributed
      // through the pooling indices of both.
      const bool two_d = layer.rule == DeepLiftRule::maxpool2d;
      const torch::Tensor cross_max = torch::max(out_x, a.out_r);
      contribution = unpool(grad * (cross_max - a.out_r), a.indices_x, a.in_x, two_d);
      contribution.add_(unpool(grad * (out_x - cross_max), a.indices_r, a.in_x, two_d));
    }
    contribution.div_(delta_in);
    delta_in.abs_();  // only |Δz| is needed after the division
    // Where |z − z'| < eps, the plain gradient replaces Δy/Δz: one reduction tells whether
    // any entry needs it, and only then are the mask and a backward through the layer made.
    if (delta_in.numel() == 0 || !(delta_in.min().item<double>() < eps)) return contribution;
    tiny = delta_in < eps;
  }
  const torch::Tensor plain = layer_vjp(a, grad);
  torch::NoGradGuard no_grad;
  return torch::where(tiny, plain, contribution);
}

}  // namespace detail

/// DeepLIFT attributions with the rescale rule for a Sequential network.
///
/// The input and the reference are run through the network side by side. Linear layers (Linear,
/// Conv, pooling by averages, batch norm in eval mode, ...) propagate gradients as usual; each
/// elementwise nonlinearity y = f(z) replaces its derivative by the multiplier
/// (f(z) − f(z'))/(z − z') (its plain derivative where |z − z'| < eps); max-pooling uses
/// Captum's cross-maximum rule. attributions = (x − x') ⊙ multipliers, which satisfy
/// summation-to-delta: Σ attributions = F(x) − F(x'). Matches Captum 0.7's `DeepLift`.
/// Costs two forwards (input and reference) and one backward over N rows, plus elementwise work
/// at the nonlinearities; a reference shared by all samples (the default zeros, or a baseline
/// broadcast over the batch) is run forward as a single row. The network's mode and parameters
/// are left as they are.
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
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());

  std::vector<detail::DeepLiftLayer> layers;
  detail::deeplift_layers(net, "", layers);
  TORCH_CHECK(!layers.empty(), fn, ": the network has no layers");

  torch::AutoGradMode grad_mode(true);
  std::vector<detail::DeepLiftActivations> acts;
  acts.reserve(layers.size());
  // A reference shared by all samples (the default zeros, or a baseline without a batch
  // dimension or with one row) runs through the network once, as one row.
  const bool shared = !options.baseline().defined() ||
                      options.baseline().dim() < input.dim() || options.baseline().size(0) == 1;
  torch::Tensor x = input.detach();
  torch::Tensor r = (shared ? baseline.narrow(0, 0, 1) : baseline).detach().contiguous();
  for (auto& layer : layers) {
    acts.push_back(detail::deeplift_forward(layer, x, r));
    x = acts.back().out_x;
    r = acts.back().out_r;
  }

  // The multipliers at the output: the target's logit.
  torch::Tensor grad;
  if (target.defined()) {
    TORCH_CHECK(x.dim() == 2, fn, ": with a target the network output must be [N, C], got ",
                x.sizes());
    grad = torch::zeros_like(x).scatter_(1, detail::gather_target(fn, x, target), 1.0);
  } else {
    TORCH_CHECK(x.dim() == 1, fn, ": without a target the network output must be [N], got ",
                x.sizes());
    grad = torch::ones_like(x);
  }
  for (size_t i = layers.size(); i-- > 0;)
    grad = detail::deeplift_backward(layers[i], acts[i], grad, options.eps());
  return ((input - baseline) * grad).detach();
}

}  // namespace rar
