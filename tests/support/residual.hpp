#pragma once
// The residual network of tests/data/make_residual_reference.py, built with rar::nn activations
// (every one its own module, as in the Python twin): a residual add, a concatenation and a
// custom forward, so that nothing about it is a Sequential.

#include <rar/rar.hpp>

#include "support/reference.hpp"

namespace rar {
namespace test {

inline const Reference& residual_reference() {
  static const Reference ref(data_path("residual_reference.txt"));
  return ref;
}

struct ResidualImpl : torch::nn::Module {
  torch::nn::Conv2d stem{nullptr}, conv_a{nullptr}, conv_b{nullptr}, branch{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr}, fc4{nullptr};
  rar::nn::ReLU stem_act{nullptr}, add_act{nullptr};
  rar::nn::LeakyReLU act_a{nullptr};
  rar::nn::ELU branch_act{nullptr};
  rar::nn::Tanh act1{nullptr};
  rar::nn::Softplus act2{nullptr};
  rar::nn::Sigmoid act3{nullptr};

  ResidualImpl() {
    namespace tnn = torch::nn;
    auto conv = [](int64_t in, int64_t out, int64_t k) {
      return tnn::Conv2d(tnn::Conv2dOptions(in, out, k).padding(k / 2));
    };
    stem = register_module("stem", conv(2, 4, 3));
    stem_act = register_module("stem_act", rar::nn::ReLU());
    conv_a = register_module("conv_a", conv(4, 4, 3));
    act_a = register_module("act_a", rar::nn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.1)));
    conv_b = register_module("conv_b", conv(4, 4, 3));
    add_act = register_module("add_act", rar::nn::ReLU());
    branch = register_module("branch", conv(4, 2, 1));
    branch_act = register_module("branch_act", rar::nn::ELU());
    fc1 = register_module("fc1", tnn::Linear(54, 8));
    act1 = register_module("act1", rar::nn::Tanh());
    fc2 = register_module("fc2", tnn::Linear(8, 6));
    act2 = register_module("act2", rar::nn::Softplus());
    fc3 = register_module("fc3", tnn::Linear(6, 6));
    act3 = register_module("act3", rar::nn::Sigmoid());
    fc4 = register_module("fc4", tnn::Linear(6, 3));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor h = stem_act(stem(x));
    const torch::Tensor r = conv_b(act_a(conv_a(h)));
    const torch::Tensor h2 = add_act(h + r);
    const torch::Tensor b = branch_act(branch(h));
    torch::Tensor z = torch::avg_pool2d(torch::cat({h2, b}, 1), 2).flatten(1);
    z = act2(fc2(act1(fc1(z))));
    return fc4(act3(fc3(z)));
  }
};
TORCH_MODULE(Residual);

/// The reference network with the reference weights, in `dtype`, eval mode.
inline Residual residual_model(torch::Dtype dtype = torch::kDouble) {
  Residual net;
  net->to(dtype);
  residual_reference().load_into(*net, "residual");
  net->eval();
  return net;
}

}  // namespace test
}  // namespace rar
