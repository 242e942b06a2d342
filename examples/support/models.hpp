#pragma once
/// @file
/// The networks of the paper's experiments, with a switchable smooth activation so that the
/// attribution attack's surrogate (same weights, softplus) is a copy of the trained network.

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

/// The activation a·x + (1 − a)·relu(x), or its smooth twin a·x + (1 − a)·softplus_β(x).
struct Activation {
  double slope = 0.0;  ///< a: the leaky part (0 for ReLU)
  double beta = 0.0;   ///< 0: piecewise linear (the real net); > 0: softplus with this β
  torch::Tensor operator()(const torch::Tensor& x) const;
};

/// A classifier `[N, C, H, W] -> [N, classes]` whose activation can be made smooth.
class NetImpl : public torch::nn::Cloneable<NetImpl> {
 public:
  explicit NetImpl(NetConfig config = {});
  void reset() override;
  torch::Tensor forward(torch::Tensor x);
  /// Replaces the activation by its softplus twin with this β (the surrogate).
  void make_smooth(double beta) { activation_.beta = beta; }
  const NetConfig& config() const { return config_; }

 private:
  torch::Tensor residual_unit(size_t index, const torch::Tensor& x);
  NetConfig config_;
  Activation activation_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::Conv2d> shortcuts_;  // one per residual unit; empty holder = identity
  std::vector<torch::nn::Linear> linears_;
};
TORCH_MODULE(Net);

/// A deep copy of `net` with smooth activations (softplus β; the leaky part is kept, so a
/// leaky ReLU 0.1 becomes 0.1·x + 0.9·softplus_β(x) as in the paper's GTSRB/Flower code).
Net smooth_surrogate(const Net& net, double beta);

/// Parses "mnist_cnn" / "resnet"; throws naming the value otherwise.
Architecture parse_architecture(const std::string& name);

}  // namespace examples
}  // namespace rar
