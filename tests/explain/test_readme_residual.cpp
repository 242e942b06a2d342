// The README's residual-block example, run: DeepLIFT sums to F(x) − F(0), and the attack through
// the smooth surrogate moves the maps while keeping the labels.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

namespace {

// --- as in README.md -------------------------------------------------------------------------
struct BlockImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear head{nullptr};
  rar::nn::ReLU relu1{nullptr}, relu2{nullptr};
  BlockImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 3).padding(1)))),
        head(register_module("head", torch::nn::Linear(8, 10))),
        relu1(register_module("relu1", rar::nn::ReLU())),
        relu2(register_module("relu2", rar::nn::ReLU())) {}
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor h = relu1(conv1(x));
    return head(relu2(h + conv2(h)).mean({2, 3}));  // a residual add, then global pooling
  }
};
TORCH_MODULE(Block);
// ---------------------------------------------------------------------------------------------

}  // namespace

TEST_CASE("the README's residual block: DeepLIFT sums to the logit difference and the surrogate "
          "attack moves the maps", "[explain][readme]") {
  torch::manual_seed(12);
  Block net;
  net->to(torch::kDouble);
  net->eval();
  const torch::Tensor x = torch::rand({4, 1, 12, 12}, torch::kDouble);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x).argmax(1);
  }
  torch::Tensor dl = rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
  torch::Tensor logit_gap;
  {
    torch::NoGradGuard no_grad;
    logit_gap = (net->forward(x) - net->forward(torch::zeros_like(x))).gather(1, y.view({-1, 1})).squeeze(1);
  }
  CHECK((dl.flatten(1).sum(1) - logit_gap).abs().max().item<double>() < 1e-10);

  auto smooth = rar::smooth_surrogate(net, /*beta=*/10.0);
  auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(50)).graph_steps(10);
  rar::AttackResult r = rar::attribution_attack(
      net, smooth, ig, x, y, rar::AttributionAttackOptions().k(20).epsilon(0.1).iterations(10));
  CHECK(r.prediction_kept.all().item<bool>());
  CHECK((r.adversarial - x).abs().max().item<double>() <= 0.1 + 1e-12);
  CHECK(r.topk_intersection.mean().item<double>() < 1.0);
}
