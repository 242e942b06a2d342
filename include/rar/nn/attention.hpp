#pragma once
/// @file
/// `rar::nn::MultiheadAttention`: a drop-in for `torch::nn::MultiheadAttention` (same options,
/// parameters, state-dict names and outputs) written with rar's `matmul` and `softmax`, so that
/// DeepLIFT sees attention and sums to F(x) − F(x′) through it.

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <rar/nn/layers.hpp>
#include <tuple>

namespace rar {
namespace nn {

/// Drop-in for `torch::nn::MultiheadAttention` (Vaswani et al. 2017), with the same options,
/// the same parameters under the same names (`in_proj_weight`, `in_proj_bias`,
/// `out_proj.weight`, `out_proj.bias`: a state dict moves between the two), the same
/// initialization, the same inputs `[L, N, E]` (sequence first, as LibTorch's module) and the
/// same outputs: the attention output `[L, N, E]` and, with `need_weights`, the attention weights
/// `[N, L, S]` (averaged over heads) or `[N, heads, L, S]`.
///
/// The logits q·kᵀ and the weights times the values go through `rar::nn::functional::matmul`,
/// the weights through `rar::nn::functional::softmax`; outside a DeepLIFT scope those are
/// `torch::matmul` and `torch::softmax`, so the outputs equal torch's up to rounding (the three
/// projections are three products here, one stacked product in torch's self-attention). Under
/// `rar::deeplift` their exact rules make the map sum to F(x) − F(x′) through attention, where
/// `torch::nn::MultiheadAttention` passes plain gradients and the completeness check refuses
/// the map.
///
/// Masked positions (a boolean `attn_mask` or `key_padding_mask`: true means not allowed, as
/// PyTorch documents; LibTorch 1.13's C++ module instead adds a boolean `attn_mask` as 0/1) get
/// the logit −10⁹ instead of −∞, so that DeepLIFT's softmax rule stays finite; their weight is
/// exactly 0 either way, except in a row whose every position is masked (torch gives NaN, this
/// module a uniform row).
/// `kdim`/`vdim` other than `embed_dim`, `add_bias_kv` and `add_zero_attn` are refused.
/// Dropout on the weights applies in training mode, as in torch.
///
/// Example:
/// @code
/// rar::nn::MultiheadAttention attn(torch::nn::MultiheadAttentionOptions(64, 4));
/// auto [out, weights] = attn(x, x, x);  // x: [L, N, 64]; self-attention
/// @endcode
class MultiheadAttentionImpl : public torch::nn::Cloneable<MultiheadAttentionImpl> {
 public:
  /// @param embed_dim E, the model dimension
  /// @param num_heads heads; E must be divisible by it
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads)
      : MultiheadAttentionImpl(torch::nn::MultiheadAttentionOptions(embed_dim, num_heads)) {}

  /// @param options_ embed_dim, num_heads, dropout, bias (kdim = vdim = embed_dim, no
  ///        add_bias_kv or add_zero_attn)
  explicit MultiheadAttentionImpl(torch::nn::MultiheadAttentionOptions options_)
      : options(std::move(options_)) {
    reset();
  }

  /// Registers the parameters and initializes them as LibTorch does: Xavier-uniform
  /// `in_proj_weight`, zero biases, `out_proj` a `torch::nn::Linear(E, E)`.
  void reset() override {
    const int64_t e = options.embed_dim();
    const int64_t h = options.num_heads();
    TORCH_CHECK(e > 0 && h > 0 && e % h == 0,
                "rar::nn::MultiheadAttention: embed_dim must be a positive multiple of "
                "num_heads, got embed_dim = ", e, ", num_heads = ", h);
    TORCH_CHECK(options.kdim() == e && options.vdim() == e,
                "rar::nn::MultiheadAttention: kdim and vdim must equal embed_dim (", e,
                "), got kdim = ", options.kdim(), ", vdim = ", options.vdim());
    TORCH_CHECK(!options.add_bias_kv() && !options.add_zero_attn(),
                "rar::nn::MultiheadAttention: add_bias_kv and add_zero_attn are not supported");
    TORCH_CHECK(options.dropout() >= 0 && options.dropout() < 1,
                "rar::nn::MultiheadAttention: dropout must be in [0, 1), got ", options.dropout());
    head_dim = e / h;
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * e, e}));
    if (options.bias()) in_proj_bias = register_parameter("in_proj_bias", torch::empty({3 * e}));
    out_proj = register_module(
        "out_proj", torch::nn::Linear(torch::nn::LinearOptions(e, e).bias(options.bias())));
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(in_proj_weight);
    if (options.bias()) {
      in_proj_bias.zero_();
      out_proj->bias.zero_();
    }
  }

  /// Multi-head attention of `query` over `key`/`value`.
  /// @param query `[L, N, E]`
  /// @param key `[S, N, E]`
  /// @param value `[S, N, E]`
  /// @param key_padding_mask `[N, S]`, boolean (true: ignore that key) or additive float
  ///        (undefined: none)
  /// @param need_weights also return the attention weights
  /// @param attn_mask `[L, S]` or `[N·heads, L, S]`, boolean (true: not allowed) or additive
  ///        float (undefined: none)
  /// @param average_attn_weights average the returned weights over the heads
  /// @return the output `[L, N, E]`, and the weights `[N, L, S]` (averaged) or
  ///         `[N, heads, L, S]` when `need_weights`, else an undefined tensor
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& query,
                                                   const torch::Tensor& key,
                                                   const torch::Tensor& value,
                                                   const torch::Tensor& key_padding_mask = {},
                                                   bool need_weights = true,
                                                   const torch::Tensor& attn_mask = {},
                                                   bool average_attn_weights = true) {
    const int64_t e = options.embed_dim();
    const int64_t h = options.num_heads();
    TORCH_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3 && query.size(2) == e &&
                    key.size(2) == e && value.size(2) == e && key.size(0) == value.size(0) &&
                    key.size(1) == query.size(1) && value.size(1) == query.size(1),
                "rar::nn::MultiheadAttention: query [L, N, ", e, "], key and value [S, N, ", e,
                "] are needed, got ", query.sizes(), ", ", key.sizes(), " and ", value.sizes());
    const int64_t l = query.size(0), n = query.size(1), s = key.size(0);
    const auto w = in_proj_weight.chunk(3, 0);
    const auto b = in_proj_bias.defined() ? in_proj_bias.chunk(3, 0)
                                          : std::vector<torch::Tensor>{{}, {}, {}};
    // [T, N, E] -> [N·heads, T, head_dim], as torch's multi_head_attention_forward.
    auto heads = [&](const torch::Tensor& t, int64_t len) {
      return t.contiguous().view({len, n * h, head_dim}).transpose(0, 1);
    };
    // Queries scaled by 1/√head_dim before the product, as torch does (a constant: linear).
    const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim));
    const torch::Tensor q = heads(torch::nn::functional::linear(query, w[0], b[0]) * scaling, l);
    const torch::Tensor k = heads(torch::nn::functional::linear(key, w[1], b[1]), s);
    const torch::Tensor v = heads(torch::nn::functional::linear(value, w[2], b[2]), s);
    torch::Tensor logits = functional::matmul(q, k.transpose(1, 2));
    if (attn_mask.defined()) {
      TORCH_CHECK((attn_mask.dim() == 2 && attn_mask.size(0) == l && attn_mask.size(1) == s) ||
                      (attn_mask.dim() == 3 && attn_mask.size(0) == n * h &&
                       attn_mask.size(1) == l && attn_mask.size(2) == s),
                  "rar::nn::MultiheadAttention: attn_mask must be [", l, ", ", s, "] or [", n * h,
                  ", ", l, ", ", s, "], got ", attn_mask.sizes());
      logits = logits + additive(attn_mask, logits);
    }
    if (key_padding_mask.defined()) {
      TORCH_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == n &&
                      key_padding_mask.size(1) == s,
                  "rar::nn::MultiheadAttention: key_padding_mask must be [", n, ", ", s,
                  "], got ", key_padding_mask.sizes());
      logits = (logits.view({n, h, l, s}) +
                additive(key_padding_mask, logits).view({n, 1, 1, s}))
                   .view({n * h, l, s});
    }
    torch::Tensor weights = functional::softmax(logits, -1);
    if (options.dropout() > 0 && is_training())
      weights = torch::dropout(weights, options.dropout(), /*train=*/true);
    const torch::Tensor out = out_proj(functional::matmul(weights, v).transpose(0, 1).contiguous().view({l, n, e}));
    if (!need_weights) return {out, torch::Tensor()};
    const torch::Tensor per_head = weights.view({n, h, l, s});
    return {out, average_attn_weights ? per_head.sum(1) / static_cast<double>(h) : per_head};
  }

  /// Prints `rar::nn::MultiheadAttention(embed_dim=…, num_heads=…)`.
  /// @param stream where to print
  void pretty_print(std::ostream& stream) const override {
    stream << "rar::nn::MultiheadAttention(embed_dim=" << options.embed_dim()
           << ", num_heads=" << options.num_heads() << ")";
  }

  /// The options this module was built with.
  torch::nn::MultiheadAttentionOptions options;
  /// The query, key and value projections stacked, `[3E, E]`.
  torch::Tensor in_proj_weight;
  /// Their biases, `[3E]` (undefined without `bias`).
  torch::Tensor in_proj_bias;
  /// The output projection.
  torch::nn::Linear out_proj{nullptr};
  /// E / heads.
  int64_t head_dim = 0;

 private:
  // A boolean mask as logits: −10⁹ where true (finite, see the class comment); a float one as is.
  static torch::Tensor additive(const torch::Tensor& mask, const torch::Tensor& like) {
    if (mask.scalar_type() != torch::kBool) return mask.to(like.scalar_type());
    return torch::zeros(mask.sizes(), like.options()).masked_fill(mask, -1e9);
  }

 protected:
  FORWARD_HAS_DEFAULT_ARGS({3, torch::nn::AnyValue(torch::Tensor())},
                           {4, torch::nn::AnyValue(true)},
                           {5, torch::nn::AnyValue(torch::Tensor())},
                           {6, torch::nn::AnyValue(true)})
};

/// A `ModuleHolder` for `MultiheadAttentionImpl`.
TORCH_MODULE(MultiheadAttention);

}  // namespace nn
}  // namespace rar
