#include "support/models.hpp"

#include <stdexcept>

namespace rar {
namespace examples {

NetImpl::NetImpl(NetConfig config) : config_(config) { reset(); }

torch::Tensor NetImpl::activation(const torch::Tensor& x) const {
  if (config_.leaky_slope == 0.0) return rar::nn::functional::relu(x);
  return rar::nn::functional::leaky_relu(
      x, torch::nn::LeakyReLUOptions().negative_slope(config_.leaky_slope));
}

void NetImpl::reset() {
  namespace nn = torch::nn;
  convs_.clear();
  shortcuts_.clear();
  linears_.clear();
  auto conv = [&](int64_t in, int64_t out, int64_t kernel, int64_t stride) {
    convs_.push_back(register_module(
        "conv" + std::to_string(convs_.size()),
        nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2))));
  };
  const NetConfig& c = config_;
  if (c.arch == Architecture::mnist_cnn) {
    conv(c.in_channels, c.conv1, 5, 1);
    conv(c.conv1, c.conv2, 5, 1);
    const int64_t side = c.image_size / 4;
    linears_.push_back(register_module("fc0", nn::Linear(c.conv2 * side * side, c.fc)));
    linears_.push_back(register_module("fc1", nn::Linear(c.fc, c.classes)));
    return;
  }
  // Slim ResNet: stem, then 3 stages (16, 32, 64 channels; stride 2 from the second on).
  conv(c.in_channels, 16, 3, 1);
  int64_t channels = 16;
  for (int64_t stage = 0; stage < 3; ++stage) {
    const int64_t width = 16 << stage;
    for (int64_t unit = 0; unit < c.units_per_stage; ++unit) {
      const int64_t stride = (stage > 0 && unit == 0) ? 2 : 1;
      conv(channels, width, 3, stride);
      conv(width, width, 3, 1);
      if (stride != 1 || channels != width) {
        shortcuts_.push_back(
            register_module("shortcut" + std::to_string(shortcuts_.size()),
                            nn::Conv2d(nn::Conv2dOptions(channels, width, 1).stride(stride))));
      } else {
        shortcuts_.emplace_back(nullptr);
      }
      channels = width;
    }
  }
  linears_.push_back(register_module("fc0", nn::Linear(channels, c.classes)));
}

torch::Tensor NetImpl::residual_unit(size_t index, const torch::Tensor& x) {
  // convs_[0] is the stem; unit i owns convs_[1 + 2i] and convs_[2 + 2i].
  const torch::Tensor h = convs_[1 + 2 * index]->forward(activation(x));
  const torch::Tensor out = convs_[2 + 2 * index]->forward(activation(h));
  const torch::Tensor skip = shortcuts_[index].is_empty() ? x : shortcuts_[index]->forward(x);
  return out + skip;
}

torch::Tensor NetImpl::forward(torch::Tensor x) {
  const NetConfig& c = config_;
  // Per-image standardization (TensorFlow's): (x − mean) / max(std, 1/√numel), in rar::nn's
  // form so that DeepLIFT has an exact rule for it.
  if (c.standardize) x = rar::nn::functional::per_image_standardization(x);
  if (c.arch == Architecture::mnist_cnn) {
    // rar::nn's max pooling: DeepLIFT applies its cross-maximum rule (exact summation-to-delta).
    const auto pool = torch::nn::functional::MaxPool2dFuncOptions(2);
    x = rar::nn::functional::max_pool2d(activation(convs_[0]->forward(x)), pool);
    x = rar::nn::functional::max_pool2d(activation(convs_[1]->forward(x)), pool);
    x = activation(linears_[0]->forward(x.flatten(1)));
    return linears_[1]->forward(x);
  }
  x = convs_[0]->forward(x);
  for (size_t unit = 0; unit < shortcuts_.size(); ++unit) x = residual_unit(unit, x);
  x = activation(x).mean({2, 3});
  return linears_[0]->forward(x);
}

Architecture parse_architecture(const std::string& name) {
  if (name == "mnist_cnn") return Architecture::mnist_cnn;
  if (name == "resnet") return Architecture::resnet;
  throw std::invalid_argument("unknown architecture '" + name + "' (expected mnist_cnn or resnet)");
}

}  // namespace examples
}  // namespace rar
