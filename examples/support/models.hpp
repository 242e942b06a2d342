#pragma once
/// @file
/// The networks of the paper's experiments. Their activations are `rar::nn` ones (ReLU, or
/// LeakyReLU for the paper's ResNet), so that every method of rar sees them: DeepLIFT and guided
/// backprop switch them, and `rar::smooth_surrogate(net, beta)` is the attribution attack's
/// surrogate (same weights, softplus_β).

#include <rar/nn.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace rar {
namespace examples {

/// Which network to build.
enum class Architecture {
  mnist_cnn,  ///< conv5×5×c1 – pool – conv5×5×c2 – pool – fc – fc (the paper's MNIST model)
  resnet  ///< slim ResNet without batch norm, 16/32/64 channels, leaky ReLU (GTSRB, Flower)
};

/// Shape of a network.
struct NetConfig {
  Architecture arch = Architecture::mnist_cnn;
  int64_t in_channels = 1;
  int64_t image_size = 28;
  int64_t classes = 10;
  int64_t conv1 = 32, conv2 = 64, fc = 1024;  ///< mnist_cnn widths (paper: 32/64/1024)
  int64_t units_per_stage = 2;                ///< resnet: residual units per stage
  double leaky_slope = 0.0;                   ///< 0: ReLU; the paper's ResNet uses 0.1
  bool standardize = false;                   ///< per-image standardization (resnet)
};

/// A classifier `[N, C, H, W] -> [N, classes]`. Its activation is `rar::nn::functional::relu`
/// (leaky_slope 0) or `leaky_relu(leaky_slope)`: plain torch outside rar's scopes, smoothed by
/// `rar::smooth_surrogate` (a leaky ReLU 0.1 becomes 0.1·x + 0.9·softplus_β(x), as in the
/// paper's GTSRB/Flower code). The activations are functional, so they add no module and the
/// checkpoints (state dicts) are those of a network without them.
class NetImpl : public torch::nn::Cloneable<NetImpl> {
 public:
  explicit NetImpl(NetConfig config = {});
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  const NetConfig& config() const { return config_; }

 private:
  torch::Tensor activation(const torch::Tensor& x) const;
  torch::Tensor residual_unit(size_t index, const torch::Tensor& x);
  NetConfig config_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::Conv2d> shortcuts_;  // one per residual unit; empty holder = identity
  std::vector<torch::nn::Linear> linears_;
};
TORCH_MODULE(Net);

/// Parses "mnist_cnn" / "resnet"; throws naming the value otherwise.
Architecture parse_architecture(const std::string& name);

}  // namespace examples
}  // namespace rar
