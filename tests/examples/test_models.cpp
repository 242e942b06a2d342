// The examples' networks on rar::nn activations: the checkpoint format is unchanged, outside a
// scope they compute torch's ReLU / LeakyReLU, and rar::smooth_surrogate makes them the same
// network written with softplus_β (the leaky part kept), sharing the weights.

#include "support/experiment.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

using namespace rar::examples;

namespace {

NetConfig small_cnn(double leaky_slope) {
  NetConfig c;
  c.conv1 = 3;
  c.conv2 = 4;
  c.fc = 8;
  c.leaky_slope = leaky_slope;
  return c;
}

// The mnist_cnn forward written out from the parameters, with the activation `act`.
torch::Tensor written_out(Net& net, const torch::Tensor& x,
                          const std::function<torch::Tensor(const torch::Tensor&)>& act) {
  auto p = net->named_parameters();
  auto conv = [&](const torch::Tensor& h, const std::string& name) {
    return torch::conv2d(h, p[name + ".weight"], p[name + ".bias"], 1, 2);
  };
  torch::Tensor h = torch::max_pool2d(act(conv(x, "conv0")), 2);
  h = torch::max_pool2d(act(conv(h, "conv1")), 2);
  h = act(torch::linear(h.flatten(1), p["fc0.weight"], p["fc0.bias"]));
  return torch::linear(h, p["fc1.weight"], p["fc1.bias"]);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

std::vector<std::string> keys(Net& net) {
  std::vector<std::string> out;
  for (const auto& p : net->named_parameters()) out.push_back(p.key());
  return out;
}

}  // namespace

TEST_CASE("the examples' networks keep their checkpoint format: no activation modules",
          "[examples][models]") {
  Net cnn(small_cnn(0.0));
  CHECK(keys(cnn) == std::vector<std::string>{"conv0.weight", "conv0.bias", "conv1.weight",
                                              "conv1.bias", "fc0.weight", "fc0.bias",
                                              "fc1.weight", "fc1.bias"});
  CHECK(cnn->children().size() == 4);
  NetConfig res;
  res.arch = Architecture::resnet;
  res.in_channels = 3;
  res.image_size = 16;
  res.classes = 5;
  res.units_per_stage = 1;
  res.leaky_slope = 0.1;
  Net resnet(res);
  // Shortcuts are numbered by residual unit (unit 0 has the identity, no parameters).
  CHECK(keys(resnet) ==
        std::vector<std::string>{"conv0.weight",     "conv0.bias",     "conv1.weight",
                                 "conv1.bias",       "conv2.weight",   "conv2.bias",
                                 "conv3.weight",     "conv3.bias",     "conv4.weight",
                                 "conv4.bias",       "shortcut1.weight", "shortcut1.bias",
                                 "conv5.weight",     "conv5.bias",     "conv6.weight",
                                 "conv6.bias",       "shortcut2.weight", "shortcut2.bias",
                                 "fc0.weight",       "fc0.bias"});
  CHECK(resnet->buffers().empty());
}

TEST_CASE("outside a scope the examples' networks compute torch's ReLU and LeakyReLU",
          "[examples][models]") {
  for (const double slope : {0.0, 0.1}) {
    INFO("leaky slope " << slope);
    torch::manual_seed(1);
    Net net(small_cnn(slope));
    net->to(torch::kDouble);
    const auto x = torch::rand({3, 1, 28, 28}, torch::kDouble);
    const auto expected = written_out(net, x, [&](const torch::Tensor& t) {
      return slope == 0.0 ? torch::relu(t) : torch::leaky_relu(t, slope);
    });
    CHECK(net->forward(x).equal(expected));
  }
}

TEST_CASE("the smooth surrogate of an example network is the network written with softplus_beta",
          "[examples][models]") {
  for (const double slope : {0.0, 0.1}) {
    for (const double beta : {1.0, 10.0}) {
      INFO("leaky slope " << slope << ", beta " << beta);
      torch::manual_seed(2);
      Net net(small_cnn(slope));
      net->to(torch::kDouble);
      net->eval();
      // Large inputs put pre-activations above softplus's linear threshold (β·z > 20) too.
      const auto x = torch::rand({3, 1, 28, 28}, torch::kDouble) * torch::tensor({1.0, 5.0, 40.0}, torch::kDouble).view({3, 1, 1, 1});
      auto smooth_act = [&](const torch::Tensor& t) {
        const torch::Tensor soft = torch::softplus(t, beta, 20.0);
        return slope == 0.0 ? soft : slope * t + (1.0 - slope) * soft;
      };
      auto surrogate = rar::smooth_surrogate(net, beta);
      const auto xs = x.clone().requires_grad_(true);
      const auto out = surrogate(xs);
      const auto expected = written_out(net, xs, smooth_act);
      CHECK(max_abs_diff(out, expected) <= 1e-12 * (1.0 + expected.abs().max().item<double>()));
      // The attack differentiates the map: compare input gradients too.
      const auto g = torch::autograd::grad({out.select(1, 0).sum()}, {xs}, {}, true)[0];
      const auto g_expected = torch::autograd::grad({expected.select(1, 0).sum()}, {xs})[0];
      CHECK(max_abs_diff(g, g_expected) <= 1e-12 * (1.0 + g_expected.abs().max().item<double>()));
      // The model itself is unchanged, and the surrogate shares its weights (no copy).
      CHECK_FALSE(net->forward(x).equal(out.detach()));
      {
        torch::NoGradGuard no_grad;
        net->named_parameters()["fc1.bias"].add_(1.0);
      }
      CHECK(max_abs_diff(surrogate(x), out.detach() + 1.0) < 1e-12);
    }
  }
}
