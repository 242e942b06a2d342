// max_rows of the robust-IG terms: the same loss and parameter gradients as without a limit,
// computed chunk by chunk with a smaller peak of allocated memory; errors where the parameters
// cannot be seen.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <memory>
#include <vector>

using rar::test::max_rel_diff;
namespace nn = torch::nn;

namespace {

nn::Sequential small_cnn(uint64_t seed) {
  torch::manual_seed(seed);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)), nn::Tanh(),
                     nn::Flatten(), nn::Linear(4 * 6 * 6, 3));
  net->to(torch::kDouble);
  return net;
}

// Loss and parameter gradients of `term` on `net` (the term's random start seeded alike).
template <class Term, class Net>
std::pair<double, std::vector<torch::Tensor>> loss_and_grads(const Term& term, Net& net,
                                                             const torch::Tensor& x,
                                                             const torch::Tensor& y) {
  net->zero_grad();
  const torch::Tensor loss = term(net, x, y);
  loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : net->parameters()) grads.push_back(p.grad().clone());
  return {loss.template item<double>(), grads};
}

// Peak bytes LibTorch's allocator holds during f().
template <class F>
int64_t peak_bytes(F&& f) {
  auto counter = std::make_shared<rar::detail::AllocationCounter>();
  {
    c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, counter);
    f();
  }
  return counter->peak();
}

}  // namespace

TEST_CASE("max_rows gives the loss and parameter gradients of the unlimited term",
          "[regularizer][max-rows]") {
  auto net = small_cnn(3);
  torch::manual_seed(4);
  const torch::Tensor x = torch::rand({7, 1, 6, 6}, torch::kDouble);
  const torch::Tensor y = torch::randint(0, 3, {7}, torch::kLong);
  for (const auto reduction : {rar::Reduction::mean, rar::Reduction::sum}) {
    const auto ig_norm = rar::IGNormOptions()
                             .epsilon(0.2)
                             .steps(6)
                             .inner_stride(3)
                             .attack_steps(3)
                             .attack_step_size(0.05)
                             .lambda(0.7)
                             .reduction(reduction)
                             .seed(11);
    const auto ig_sum_norm = rar::IGSumNormOptions()
                                 .epsilon(0.2)
                                 .steps(6)
                                 .inner_stride(3)
                                 .attack_steps(3)
                                 .attack_step_size(0.05)
                                 .beta(0.3)
                                 .reduction(reduction)
                                 .seed(11);
    // 13 rows: chunks of 2 samples in the final objective (6 points), 6 in the inner (2 points).
    const auto [full, full_grads] = loss_and_grads(rar::ig_norm(ig_norm), net, x, y);
    const auto [chunked, chunked_grads] =
        loss_and_grads(rar::ig_norm(rar::IGNormOptions(ig_norm).max_rows(13)), net, x, y);
    CHECK(chunked == Approx(full).epsilon(1e-12));
    CHECK(full > 1e-4);
    for (size_t i = 0; i < full_grads.size(); ++i) {
      CHECK(max_rel_diff(chunked_grads[i], full_grads[i]) < 1e-10);
      CHECK(full_grads[i].abs().sum().item<double>() > 0);
    }
    const auto [sum_full, sum_full_grads] = loss_and_grads(rar::ig_sum_norm(ig_sum_norm), net, x, y);
    const auto [sum_chunked, sum_chunked_grads] = loss_and_grads(
        rar::ig_sum_norm(rar::IGSumNormOptions(ig_sum_norm).max_rows(1)), net, x, y);
    CHECK(sum_chunked == Approx(sum_full).epsilon(1e-12));
    for (size_t i = 0; i < sum_full_grads.size(); ++i)
      CHECK(max_rel_diff(sum_chunked_grads[i], sum_full_grads[i]) < 1e-10);
    // Composed and scaled: the attached gradients follow the chain rule.
    const auto composed = rar::cross_entropy() + 0.5 * rar::ig_norm(ig_norm);
    const auto composed_chunked =
        rar::cross_entropy() + 0.5 * rar::ig_norm(rar::IGNormOptions(ig_norm).max_rows(13));
    const auto [c_full, c_full_grads] = loss_and_grads(composed, net, x, y);
    const auto [c_chunked, c_chunked_grads] = loss_and_grads(composed_chunked, net, x, y);
    CHECK(c_chunked == Approx(c_full).epsilon(1e-12));
    for (size_t i = 0; i < c_full_grads.size(); ++i)
      CHECK(max_rel_diff(c_chunked_grads[i], c_full_grads[i]) < 1e-10);
  }
}

TEST_CASE("max_rows works at a layer: rar::Split of modules", "[regularizer][max-rows]") {
  torch::manual_seed(21);
  nn::Sequential head(nn::Linear(5, 6), nn::Tanh());
  nn::Sequential tail(nn::Linear(6, 3));
  head->to(torch::kDouble);
  tail->to(torch::kDouble);
  const torch::Tensor x = torch::rand({5, 5}, torch::kDouble);
  const torch::Tensor y = torch::randint(0, 3, {5}, torch::kLong);
  const auto options = rar::IGNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2);
  auto run = [&](const rar::IGNormOptions& o) {
    head->zero_grad();
    tail->zero_grad();
    auto split = rar::Split{head, tail};
    const torch::Tensor loss = rar::ig_norm(o)(split, x, y);
    loss.backward();
    return std::make_pair(loss.item<double>(), torch::cat({head[0]->as<nn::Linear>()->weight.grad().flatten(),
                                                           tail[0]->as<nn::Linear>()->weight.grad().flatten()}));
  };
  const auto [full, full_grad] = run(options);
  const auto [chunked, chunked_grad] = run(rar::IGNormOptions(options).max_rows(8));
  CHECK(chunked == Approx(full).epsilon(1e-12));
  CHECK(max_rel_diff(chunked_grad, full_grad) < 1e-10);
  CHECK(full_grad.abs().sum().item<double>() > 0);
}

TEST_CASE("max_rows lowers the peak memory of a step", "[regularizer][max-rows]") {
  torch::manual_seed(5);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)), nn::Tanh(),
                     nn::Flatten(), nn::Linear(16 * 12 * 12, 10));
  const torch::Tensor x = torch::rand({32, 1, 12, 12});
  const torch::Tensor y = torch::randint(0, 10, {32}, torch::kLong);
  const auto options = rar::IGNormOptions().steps(20).inner_stride(10).attack_steps(1);
  const int64_t unlimited = peak_bytes([&] { rar::ig_norm(options)(net, x, y).backward(); });
  const int64_t limited =
      peak_bytes([&] { rar::ig_norm(rar::IGNormOptions(options).max_rows(80))(net, x, y).backward(); });
  INFO("peak without a limit " << unlimited << " bytes, with max_rows = 80: " << limited);
  CHECK(limited * 3 < unlimited);  // 640 rows against 80: well under a third
}

TEST_CASE("max_rows refuses negative values and callable models", "[regularizer][max-rows]") {
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().max_rows(-1)),
                    Catch::Contains("rar::ig_norm: max_rows must be >= 0 (0 = no limit), got -1"));
  auto net = small_cnn(3);
  auto callable = [&](const torch::Tensor& t) { return net->forward(t); };
  const torch::Tensor x = torch::rand({4, 1, 6, 6}, torch::kDouble);
  const torch::Tensor y = torch::zeros({4}, torch::kLong);
  const auto term = rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2).max_rows(4));
  CHECK_THROWS_WITH(term(callable, x, y),
                    Catch::Contains("rar::ig_sum_norm: max_rows needs a model that is a module"));
}
