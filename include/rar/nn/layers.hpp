#pragma once
/// @file
/// The operations of transformers and ConvNeXts, made visible to DeepLIFT: products of two
/// data-dependent tensors (`rar::nn::functional::mul`, `matmul`), `softmax`, `layer_norm`,
/// `scaled_dot_product_attention`, and the drop-in module `rar::nn::LayerNorm`.
///
/// Outside a DeepLIFT scope each computes exactly what its `torch::` namesake computes. Under
/// `rar::deeplift` each gets a rule that keeps summation-to-delta exact, built from two exact
/// pieces:
/// - elementwise nonlinearities y = f(z) use the rescale multiplier Δy/Δz (Shrikumar et al.
///   2017);
/// - a product of two operands uses the Shapley split of its difference between them,
///   Δ(a·b) = Δa·(b + b′)/2 + (a + a′)/2·Δb, which is exact for products and matrix products
///   (the two-player Shapley value; the "average" rule for multiplicative interactions).
///
/// softmax(z) = exp(z − log Σ exp z) and layer norm (x − μ)·(v + ε)^(−1/2) with
/// v = mean((x − μ)²) are compositions of those pieces and of linear maps, so their rules are
/// exact too; each runs as one autograd function (backward formulas in the guide, section 4).
/// Softmax subtracts one shift m for the input and the reference (the larger of their row
/// maxima), so that the shift, to which softmax is invariant, never enters a difference.

#include <rar/nn/functional.hpp>
#include <rar/nn/scope.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <utility>
#include <vector>

namespace rar {
namespace nn {
namespace detail {

/// The rescale ratio Δnum/Δden, with `fallback` where |Δden| < eps (the plain derivative).
inline torch::Tensor ratio(const torch::Tensor& num, const torch::Tensor& den,
                           const torch::Tensor& fallback, double eps) {
  const torch::Tensor small = den.abs() < eps;
  return torch::where(small, fallback, num / torch::where(small, torch::ones_like(den), den));
}

/// The product rule: forward a·b (or a @ b); backward the Shapley split, ∂a = g·(b + b′)/2 and
/// ∂b = g·(a + a′)/2 (through the matrix product for `matmul`), summed to each operand's shape.
struct ProductRescaleFunction : public torch::autograd::Function<ProductRescaleFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b, const torch::Tensor& a_ref,
                               const torch::Tensor& b_ref, bool matmul) {
    ctx->save_for_backward({(a + a_ref) * 0.5, (b + b_ref) * 0.5});
    ctx->saved_data["matmul"] = matmul;
    ctx->saved_data["a_sizes"] = a.sizes().vec();
    ctx->saved_data["b_sizes"] = b.sizes().vec();
    return matmul ? torch::matmul(a, b) : a * b;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &a_mid = saved[0], &b_mid = saved[1];
    const torch::Tensor& g = grad_outputs[0];
    const auto a_sizes = ctx->saved_data["a_sizes"].toIntVector();
    const auto b_sizes = ctx->saved_data["b_sizes"].toIntVector();
    torch::Tensor ga, gb;
    if (ctx->saved_data["matmul"].toBool()) {
      ga = torch::matmul(g, b_mid.transpose(-1, -2));
      gb = torch::matmul(a_mid.transpose(-1, -2), g);
    } else {
      ga = g * b_mid;
      gb = g * a_mid;
    }
    return {ga.sum_to_size(a_sizes), gb.sum_to_size(b_sizes), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

/// Softmax along `dim` under DeepLIFT, in the log domain: with one shift m = max(max z, max z′)
/// per row, e = exp(z − m), S = Σe, L = log S, w = z − m − L and y = exp(w). Every piece is
/// elementwise (exp, log: the rescale rule) or linear (the sum, the differences), so the rule
/// is exact; and unlike y = e·(1/S) split as a product, no term grows like exp(max z − max z′)
/// when the two rows differ by a large logit gap. Backward, from g = ∂L/∂y:
/// ∂w = g·Δy/Δw, ∂L = −Σ ∂w, ∂S = ∂L·ΔL/ΔS, ∂z = ∂w + ∂S·Δe/Δz.
struct SoftmaxRescaleFunction : public torch::autograd::Function<SoftmaxRescaleFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& z_ref, int64_t dim, double eps) {
    const torch::Tensor m =
        torch::max(std::get<0>(z.max(dim, true)), std::get<0>(z_ref.max(dim, true)));
    const torch::Tensor e = torch::exp(z - m), e_ref = torch::exp(z_ref - m);
    const torch::Tensor s = e.sum(dim, true), s_ref = e_ref.sum(dim, true);
    const torch::Tensor l = s.log(), l_ref = s_ref.log();
    const torch::Tensor w = z - m - l, w_ref = z_ref - m - l_ref;
    torch::Tensor y = w.exp();
    ctx->save_for_backward({z, z_ref, e, e_ref, s, s_ref, l, l_ref, w, w_ref, y, w_ref.exp()});
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto v = ctx->get_saved_variables();
    const torch::Tensor &z = v[0], &z_ref = v[1], &e = v[2], &e_ref = v[3], &s = v[4],
                        &s_ref = v[5], &l = v[6], &l_ref = v[7], &w = v[8], &w_ref = v[9],
                        &y = v[10], &y_ref = v[11];
    const int64_t dim = ctx->saved_data["dim"].toInt();
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor& g = grad_outputs[0];
    const torch::Tensor grad_w = g * ratio(y - y_ref, w - w_ref, y, eps);
    const torch::Tensor grad_l = -grad_w.sum(dim, true);
    const torch::Tensor grad_s = grad_l * ratio(l - l_ref, s - s_ref, s.reciprocal(), eps);
    return {grad_w + grad_s * ratio(e - e_ref, z - z_ref, e, eps), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

/// Layer normalization over the last `dims` dimensions under DeepLIFT (without the affine
/// part): c = x − μ, v = mean(c²), s = (v + ε_ln)^(−1/2) (or max(v, floor²)^(−1/2) when
/// floor > 0: per-image standardization), n = c·s. Backward, from g = ∂L/∂n:
/// ∂c = g·(s + s′)/2, ∂s = Σ g·(c + c′)/2, ∂v = ∂s·Δs/Δv, ∂c += ∂v·(c + c′)/D,
/// ∂x = ∂c − mean(∂c).
struct LayerNormRescaleFunction : public torch::autograd::Function<LayerNormRescaleFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& x_ref, int64_t dims, double ln_eps,
                               double floor, double eps) {
    std::vector<int64_t> axes;
    for (int64_t d = x.dim() - dims; d < x.dim(); ++d) axes.push_back(d);
    const torch::Tensor c = x - x.mean(axes, true), c_ref = x_ref - x_ref.mean(axes, true);
    const torch::Tensor var = (c * c).mean(axes, true), var_ref = (c_ref * c_ref).mean(axes, true);
    const auto scale = [&](const torch::Tensor& w) {
      return floor > 0 ? w.clamp_min(floor * floor).rsqrt() : (w + ln_eps).rsqrt();
    };
    const torch::Tensor s = scale(var), s_ref = scale(var_ref);
    ctx->save_for_backward({c, c_ref, var, var_ref, s, s_ref});
    ctx->saved_data["axes"] = axes;
    ctx->saved_data["ln_eps"] = ln_eps;
    ctx->saved_data["floor"] = floor;
    ctx->saved_data["eps"] = eps;
    return c * s;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto v = ctx->get_saved_variables();
    const torch::Tensor &c = v[0], &c_ref = v[1], &var = v[2], &var_ref = v[3], &s = v[4],
                        &s_ref = v[5];
    const auto axes = ctx->saved_data["axes"].toIntVector();
    const double ln_eps = ctx->saved_data["ln_eps"].toDouble();
    const double floor = ctx->saved_data["floor"].toDouble();
    const double eps = ctx->saved_data["eps"].toDouble();
    const torch::Tensor& g = grad_outputs[0];
    const torch::Tensor c_mid = (c + c_ref) * 0.5;
    torch::Tensor grad_c = g * ((s + s_ref) * 0.5);
    const torch::Tensor grad_s = (g * c_mid).sum(axes, true);
    const torch::Tensor plain =
        floor > 0 ? torch::where(var > floor * floor, -0.5 * var.clamp_min(floor * floor).pow(-1.5),
                                 torch::zeros_like(var))
                  : -0.5 * (var + ln_eps).pow(-1.5);
    const torch::Tensor grad_var = grad_s * ratio(s - s_ref, var - var_ref, plain, eps);
    int64_t size = 1;
    for (const int64_t d : axes) size *= c.size(d);
    grad_c = grad_c + grad_var * c_mid * (2.0 / static_cast<double>(size));
    return {grad_c - grad_c.mean(axes, true), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

/// A product under the current scope: plain outside DeepLIFT, the Shapley split inside.
inline torch::Tensor scoped_product(const torch::Tensor& a, const torch::Tensor& b, bool matmul) {
  ScopeState* scope = current_scope();
  const auto plain = [&] { return matmul ? torch::matmul(a, b) : a * b; };
  if (scope == nullptr || scope->rule != Rule::rescale) return plain();
  TORCH_INTERNAL_ASSERT(scope->tape != nullptr, "rescale scope without a tape");
  DeepLiftTape& tape = *scope->tape;
  if (tape.recording) {
    torch::Tensor y = plain();
    tape.entries.push_back({a.detach(), y.detach(), {}, b.detach(), DeepLiftTape::Op::product});
    return y;
  }
  const auto& ref = replay(tape, DeepLiftTape::Op::product, matmul ? "a matmul" : "a product", a, b);
  return ProductRescaleFunction::apply(a, b, ref.input, ref.other, matmul);
}

}  // namespace detail

namespace functional {

/// The elementwise product a·b of two tensors that may both depend on the input (gates,
/// attention weights times values, x·σ(x) written out). Outside a DeepLIFT scope it is `a * b`;
/// under `rar::deeplift` it splits Δ(a·b) = Δa·(b + b′)/2 + (a + a′)/2·Δb, which keeps
/// summation-to-delta exact (`a * b` would pass the plain gradient, b·Δa + a·Δb, which misses
/// Δa·Δb). A product with a constant (a weight, a scale) needs no call: it is linear.
///
/// Example: `torch::Tensor gated = rar::nn::functional::mul(h, rar::nn::functional::sigmoid(g));`
/// @param a any tensor
/// @param b a tensor broadcastable with `a`
/// @return a·b
inline torch::Tensor mul(const torch::Tensor& a, const torch::Tensor& b) {
  return detail::scoped_product(a, b, /*matmul=*/false);
}

/// The matrix product a @ b (`torch::matmul`, batched) of two tensors that may both depend on
/// the input (queries times keys, attention times values). Under `rar::deeplift` it applies the
/// product rule of `rar::nn::functional::mul` through the matrix product: exact.
///
/// Example: `torch::Tensor scores = rar::nn::functional::matmul(q, k.transpose(-2, -1));`
/// @param a `[..., n, k]`
/// @param b `[..., k, m]`
/// @return a @ b
inline torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b) {
  return detail::scoped_product(a, b, /*matmul=*/true);
}

/// Softmax along `dim`: `torch::softmax` outside a DeepLIFT scope; under `rar::deeplift` the
/// exact rule of `rar::nn::detail::SoftmaxRescaleFunction` (exp and log by the rescale rule,
/// in the log domain).
///
/// Example: `torch::Tensor attention = rar::nn::functional::softmax(scores, -1);`
/// @param input any tensor
/// @param dim the dimension that sums to 1
/// @return the softmax
inline torch::Tensor softmax(const torch::Tensor& input, int64_t dim) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr || scope->rule != Rule::rescale) return torch::softmax(input, dim);
  TORCH_INTERNAL_ASSERT(scope->tape != nullptr, "rescale scope without a tape");
  detail::DeepLiftTape& tape = *scope->tape;
  const int64_t d = dim < 0 ? dim + input.dim() : dim;
  TORCH_CHECK(d >= 0 && d < input.dim(), "rar::nn::functional::softmax: dim ", dim,
              " is out of range for a tensor of shape ", input.sizes());
  if (tape.recording) {
    torch::Tensor y = torch::softmax(input, d);
    tape.entries.push_back({input.detach(), y.detach(), {}, {}, detail::DeepLiftTape::Op::softmax});
    return y;
  }
  const auto& ref = detail::replay(tape, detail::DeepLiftTape::Op::softmax, "a softmax", input);
  return detail::SoftmaxRescaleFunction::apply(input, ref.input, d, tape.eps);
}

/// Layer normalization over the trailing `normalized_shape` dimensions, with an optional affine
/// `weight` and `bias` (`torch::layer_norm` outside a DeepLIFT scope). Under `rar::deeplift` the
/// normalization gets the exact rule of `rar::nn::detail::LayerNormRescaleFunction`; the affine
/// part is linear.
///
/// Example: `h = rar::nn::functional::layer_norm(h, {64}, ln->weight, ln->bias);`
/// @param input `[..., normalized_shape]`
/// @param normalized_shape the trailing dimensions normalized together
/// @param weight γ (undefined: none)
/// @param bias β (undefined: none)
/// @param eps ε added to the variance
/// @return the normalized input
inline torch::Tensor layer_norm(const torch::Tensor& input, torch::IntArrayRef normalized_shape,
                                const torch::Tensor& weight = {}, const torch::Tensor& bias = {},
                                double eps = 1e-5) {
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr || scope->rule != Rule::rescale)
    return torch::layer_norm(input, normalized_shape, weight, bias, eps);
  TORCH_INTERNAL_ASSERT(scope->tape != nullptr, "rescale scope without a tape");
  const auto dims = static_cast<int64_t>(normalized_shape.size());
  TORCH_CHECK(dims >= 1 && dims <= input.dim() &&
                  input.sizes().slice(static_cast<size_t>(input.dim() - dims)) == normalized_shape,
              "rar::nn::functional::layer_norm: normalized_shape ", normalized_shape,
              " must be the trailing dimensions of the input, got shape ", input.sizes());
  detail::DeepLiftTape& tape = *scope->tape;
  torch::Tensor n;
  if (tape.recording) {
    n = torch::layer_norm(input, normalized_shape, {}, {}, eps);
    tape.entries.push_back({input.detach(), n.detach(), {}, {}, detail::DeepLiftTape::Op::layer_norm});
  } else {
    const auto& ref = detail::replay(tape, detail::DeepLiftTape::Op::layer_norm, "a layer norm", input);
    n = detail::LayerNormRescaleFunction::apply(input, ref.input, dims, eps, 0.0, tape.eps);
  }
  if (weight.defined()) n = n * weight;
  if (bias.defined()) n = n + bias;
  return n;
}

/// Per-image standardization (TensorFlow's `per_image_standardization`): each sample minus its
/// mean, divided by max(std, 1/√D) over its D values. Outside a DeepLIFT scope the plain
/// formula; under `rar::deeplift` the exact rule of layer normalization with the floor.
///
/// Example: `x = rar::nn::functional::per_image_standardization(images);  // [N, C, H, W]`
/// @param input `[N, ...]` with at least one value per sample
/// @return the standardized input
inline torch::Tensor per_image_standardization(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() >= 2 && input.numel() > 0,
              "rar::nn::functional::per_image_standardization: the input must be [N, ...] with "
              "values, got shape ", input.sizes());
  const int64_t values = input.numel() / input.size(0);
  const double floor = 1.0 / std::sqrt(static_cast<double>(values));
  detail::ScopeState* scope = detail::current_scope();
  if (scope == nullptr || scope->rule != Rule::rescale) {
    const auto flat = input.flatten(1);
    std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
    shape[0] = -1;
    const auto mean = flat.mean(1).view(shape);
    const auto std = flat.std(1, /*unbiased=*/false).clamp_min(floor).view(shape);
    return (input - mean) / std;
  }
  TORCH_INTERNAL_ASSERT(scope->tape != nullptr, "rescale scope without a tape");
  detail::DeepLiftTape& tape = *scope->tape;
  const torch::Tensor flat = input.flatten(1);
  torch::Tensor n;
  if (tape.recording) {
    n = detail::LayerNormRescaleFunction::apply(flat, flat, 1, 0.0, floor, tape.eps);
    tape.entries.push_back({flat.detach(), n.detach(), {}, {}, detail::DeepLiftTape::Op::layer_norm});
  } else {
    const auto& ref = detail::replay(tape, detail::DeepLiftTape::Op::layer_norm,
                                     "a per-image standardization", flat);
    n = detail::LayerNormRescaleFunction::apply(flat, ref.input, 1, 0.0, floor, tape.eps);
  }
  return n.view(input.sizes());
}

/// Scaled dot-product attention softmax(q kᵀ · scale + mask) v, written with rar's `matmul` and
/// `softmax` so that DeepLIFT sees it (scale default 1/√d).
///
/// Example:
/// @code
/// // q, k, v: [N, heads, L, d]
/// torch::Tensor out = rar::nn::functional::scaled_dot_product_attention(q, k, v);
/// @endcode
/// @param q queries `[..., L, d]`
/// @param k keys `[..., S, d]`
/// @param v values `[..., S, d_v]`
/// @param mask additive mask broadcastable to `[..., L, S]` (undefined: none)
/// @param scale the logits' scale (≤ 0: 1/√d)
/// @return `[..., L, d_v]`
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const torch::Tensor& mask = {},
                                                  double scale = 0.0) {
  TORCH_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim() && q.size(-1) == k.size(-1) &&
                  k.size(-2) == v.size(-2),
              "rar::nn::functional::scaled_dot_product_attention: q [..., L, d], k [..., S, d] "
              "and v [..., S, d_v] are needed, got ", q.sizes(), ", ", k.sizes(), " and ",
              v.sizes());
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor logits = functional::matmul(q, k.transpose(-2, -1)) * s;
  if (mask.defined()) logits = logits + mask;
  return functional::matmul(functional::softmax(logits, -1), v);
}

}  // namespace functional

/// Drop-in for `torch::nn::LayerNorm` (same options, weight and bias): `torch::layer_norm`
/// outside a scope, the exact DeepLIFT rule of `rar::nn::functional::layer_norm` under
/// `rar::deeplift`.
///
/// Example: `rar::nn::LayerNorm norm(torch::nn::LayerNormOptions({64}));`
class LayerNormImpl : public torch::nn::Cloneable<LayerNormImpl> {
 public:
  /// @param options_ normalized_shape, eps, elementwise_affine
  explicit LayerNormImpl(torch::nn::LayerNormOptions options_) : options(std::move(options_)) {
    reset();
  }
  /// Registers weight (ones) and bias (zeros) when `elementwise_affine`.
  void reset() override {
    if (options.elementwise_affine()) {
      weight = register_parameter("weight", torch::ones(options.normalized_shape()));
      bias = register_parameter("bias", torch::zeros(options.normalized_shape()));
    }
  }
  /// Layer normalization of the trailing `normalized_shape` dimensions.
  /// @param input `[..., normalized_shape]`
  /// @return the normalized input
  torch::Tensor forward(const torch::Tensor& input) {
    return functional::layer_norm(input, options.normalized_shape(), weight, bias, options.eps());
  }
  /// Prints `rar::nn::LayerNorm([…], eps=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::LayerNorm(" << torch::IntArrayRef(options.normalized_shape())
           << ", eps=" << options.eps() << ")";
  }
  /// The options this module was built with.
  torch::nn::LayerNormOptions options;
  /// γ (undefined without `elementwise_affine`).
  torch::Tensor weight;
  /// β (undefined without `elementwise_affine`).
  torch::Tensor bias;
};
/// Module holder for `rar::nn::LayerNormImpl`.
TORCH_MODULE(LayerNorm);

}  // namespace nn
}  // namespace rar
