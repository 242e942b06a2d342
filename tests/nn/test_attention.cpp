// rar::nn::MultiheadAttention (include/rar/nn/attention.hpp): torch::nn::MultiheadAttention's
// outputs, weights and gradients on the same parameters, and an exact DeepLIFT through a
// transformer block where torch's module makes the completeness check refuse the map.

#include <rar/nn/attention.hpp>
#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include <limits>

#include "support/models.hpp"

using Catch::Contains;
using rar::test::max_rel_diff;
namespace tnn = torch::nn;

namespace {

// A torch::nn::MultiheadAttention with the parameters of `mine` (copied by name).
tnn::MultiheadAttention torch_twin(const rar::nn::MultiheadAttention& mine) {
  tnn::MultiheadAttention theirs(mine->options);
  theirs->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  const auto from = mine->named_parameters();
  for (auto& p : theirs->named_parameters()) p.value().copy_(from[p.key()]);
  return theirs;
}

// A transformer block over [N, P, 8] tokens: pre-norm attention and a GELU MLP with residual
// adds, then mean pooling and a linear head. `Attention` is rar::nn's or torch::nn's module.
template <class Attention>
struct BlockImpl : tnn::Module {
  rar::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  tnn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
  rar::nn::GELU gelu{nullptr};
  BlockImpl() {
    norm1 = register_module("norm1", rar::nn::LayerNorm(tnn::LayerNormOptions({8})));
    norm2 = register_module("norm2", rar::nn::LayerNorm(tnn::LayerNormOptions({8})));
    attn = register_module("attn", Attention(tnn::MultiheadAttentionOptions(8, 2)));
    fc1 = register_module("fc1", tnn::Linear(8, 16));
    fc2 = register_module("fc2", tnn::Linear(16, 8));
    head = register_module("head", tnn::Linear(8, 3));
    gelu = register_module("gelu", rar::nn::GELU());
  }
  torch::Tensor forward(const torch::Tensor& x) {  // x: [N, P, 8]
    const torch::Tensor h = norm1(x).transpose(0, 1);  // [P, N, 8]
    torch::Tensor t = x + std::get<0>(attn(h, h, h)).transpose(0, 1);
    t = t + fc2(gelu(fc1(norm2(t))));
    return head(t.mean(1));
  }
};

}  // namespace

TEST_CASE("rar::nn::MultiheadAttention computes what torch::nn::MultiheadAttention computes",
          "[nn][attention]") {
  torch::manual_seed(5);
  rar::nn::MultiheadAttention mine(tnn::MultiheadAttentionOptions(8, 2));
  mine->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;  // non-zero biases, so that every parameter matters
    mine->in_proj_bias.uniform_(-0.3, 0.3);
    mine->out_proj->bias.uniform_(-0.3, 0.3);
  }
  auto theirs = torch_twin(mine);
  // The same parameters under the same names, in the same order.
  std::vector<std::string> names, torch_names;
  for (const auto& p : mine->named_parameters()) names.push_back(p.key());
  for (const auto& p : theirs->named_parameters()) torch_names.push_back(p.key());
  CHECK(names == torch_names);

  const auto q = torch::randn({5, 3, 8}, torch::kDouble);
  const auto kv = torch::randn({4, 3, 8}, torch::kDouble);
  auto bool_mask = torch::zeros({5, 4}, torch::kBool);
  bool_mask.index_put_({0, 1}, true);
  bool_mask.index_put_({3, 0}, true);
  auto padding = torch::zeros({3, 4}, torch::kBool);
  padding.index_put_({1, 3}, true);
  const auto float_mask = 0.5 * torch::randn({5, 4}, torch::kDouble);
  struct Case {
    const char* name;
    torch::Tensor key, mask, padding;
    bool average;
  };
  // LibTorch 1.13's C++ module adds a boolean attn_mask as 0/1; PyTorch's documented meaning
  // (true: not allowed), which rar follows, is torch's module given -inf there.
  const auto as_float = [](const torch::Tensor& mask) {
    if (!mask.defined() || mask.scalar_type() != torch::kBool) return mask;
    return torch::zeros(mask.sizes(), torch::kDouble)
        .masked_fill(mask, -std::numeric_limits<double>::infinity());
  };
  for (const Case& c : {Case{"self", q, {}, {}, true}, Case{"cross", kv, {}, {}, true},
                        Case{"bool attn_mask", kv, bool_mask, {}, true},
                        Case{"float attn_mask", kv, float_mask, {}, false},
                        Case{"key_padding_mask", kv, {}, padding, false},
                        Case{"both masks", kv, bool_mask, padding, true}}) {
    INFO(c.name);
    const auto leaf_a = q.clone().requires_grad_(true);
    const auto leaf_b = q.clone().requires_grad_(true);
    const auto key = c.key.data_ptr() == q.data_ptr() ? leaf_a : c.key;
    const auto key_b = c.key.data_ptr() == q.data_ptr() ? leaf_b : c.key;
    const auto [out_a, w_a] = mine(leaf_a, key, key, c.padding, true, c.mask, c.average);
    const auto [out_b, w_b] =
        theirs(leaf_b, key_b, key_b, c.padding, true, as_float(c.mask), c.average);
    CHECK(out_a.sizes() == out_b.sizes());
    CHECK(w_a.sizes() == w_b.sizes());
    CHECK(max_rel_diff(out_a, out_b) < 1e-12);
    CHECK(max_rel_diff(w_a, w_b) < 1e-12);
    // The same input and parameter gradients.
    const auto weight = torch::randn_like(out_a);
    (out_a * weight).sum().backward();
    (out_b * weight).sum().backward();
    CHECK(max_rel_diff(leaf_a.grad(), leaf_b.grad()) < 1e-11);
    const auto grads_b = theirs->named_parameters();
    for (const auto& p : mine->named_parameters()) {
      INFO(p.key());
      CHECK(max_rel_diff(p.value().grad(), grads_b[p.key()].grad()) < 1e-11);
    }
    mine->zero_grad();
    theirs->zero_grad();
  }
  // Without weights, the output alone.
  CHECK_FALSE(std::get<1>(mine(q, q, q, torch::Tensor(), false)).defined());

  // LibTorch's initialization: zero biases, Xavier-uniform in_proj_weight.
  rar::nn::MultiheadAttention fresh(8, 2);
  CHECK(fresh->in_proj_bias.abs().max().item<double>() == 0);
  CHECK(fresh->out_proj->bias.abs().max().item<double>() == 0);
  const double bound = std::sqrt(6.0 / (8 + 24));
  CHECK(fresh->in_proj_weight.abs().max().item<double>() <= bound);
  CHECK(fresh->in_proj_weight.abs().max().item<double>() > 0.5 * bound);
}

TEST_CASE("DeepLIFT through rar::nn::MultiheadAttention sums to F(x) - F(x') exactly, where "
          "torch's module is refused",
          "[nn][attention][deeplift]") {
  torch::manual_seed(8);
  auto mine = std::make_shared<BlockImpl<rar::nn::MultiheadAttention>>();
  auto theirs = std::make_shared<BlockImpl<tnn::MultiheadAttention>>();
  mine->to(torch::kDouble);
  theirs->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;  // the same weights in both blocks
    const auto from = mine->named_parameters();
    for (auto& p : theirs->named_parameters()) p.value().copy_(from[p.key()]);
    mine->attn->in_proj_bias.uniform_(-0.3, 0.3);
    theirs->attn->in_proj_bias.copy_(mine->attn->in_proj_bias);
  }
  mine->eval();
  theirs->eval();
  const auto x = torch::randn({4, 6, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  REQUIRE(max_rel_diff(mine->forward(x), theirs->forward(x)) < 1e-12);
  for (const bool zero : {true, false}) {
    INFO("zero reference: " << zero);
    const auto base = zero ? torch::zeros_like(x) : 0.3 * torch::randn({4, 6, 8}, torch::kDouble);
    const auto opts = rar::DeepLiftOptions().target(y).baseline(base);
    const auto r = rar::deeplift_with_delta(mine, x, opts);
    const auto fx = rar::test::target_score(mine, x, y);
    const auto fr = rar::test::target_score(mine, base, y);
    CHECK((r.delta.abs() / (1 + fx.abs() + fr.abs())).max().item<double>() < 1e-10);
    CHECK_THROWS_WITH(rar::deeplift(theirs, x, opts), Contains("do not sum to F(x) - F(x')"));
  }
}

TEST_CASE("rar::nn::MultiheadAttention refuses what it does not support, naming the values",
          "[nn][attention][errors]") {
  CHECK_THROWS_WITH(rar::nn::MultiheadAttention(8, 3), Contains("num_heads = 3"));
  CHECK_THROWS_WITH(
      rar::nn::MultiheadAttention(tnn::MultiheadAttentionOptions(8, 2).kdim(4)),
      Contains("kdim = 4"));
  CHECK_THROWS_WITH(
      rar::nn::MultiheadAttention(tnn::MultiheadAttentionOptions(8, 2).add_bias_kv(true)),
      Contains("add_bias_kv"));
  rar::nn::MultiheadAttention attn(8, 2);
  const auto q = torch::randn({5, 3, 8});
  CHECK_THROWS_WITH(attn(q, q, q, torch::Tensor(), true, torch::zeros({5, 2}, torch::kBool)),
                    Contains("attn_mask must be [5, 5]"));
  CHECK_THROWS_WITH(attn(q, q, q, torch::zeros({3, 2}, torch::kBool)),
                    Contains("key_padding_mask must be [3, 5]"));
  CHECK_THROWS_WITH(attn(q.flatten(1), q, q), Contains("query [L, N, 8]"));
}
