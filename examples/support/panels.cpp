#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "support/experiment.hpp"
#include "support/image.hpp"

// The explain panels: image, map, attacked image and attacked map per row, as a PNG.

namespace rar {
namespace examples {

void explain(Net& net, const Dataset& test, const EvalConfig& c, torch::Device device,
             const std::string& dir, const std::string& name, int64_t count) {
  net->to(device);
  net->eval();
  std::filesystem::create_directories(dir);
  const auto method = make_explainer(explainer_config(c), net->config());
  const auto picked = correctly_classified(net, test, count, device, c.batch_size);
  const auto x = test.images.index_select(0, picked).to(device);
  const auto y = test.labels.index_select(0, picked).to(device);
  auto surrogate = rar::smooth_surrogate(net, c.surrogate_beta);
  const auto result = rar::attribution_attack(net, surrogate, method, x, y, attack_options(c));
  const auto in = rar::topk_intersection(result.original_map, result.adversarial_map, c.eval_k);
  std::vector<torch::Tensor> tiles;
  for (int64_t i = 0; i < picked.size(0); ++i) {
    tiles.push_back(x[i].cpu());
    tiles.push_back(heatmap(result.original_map[i]));
    tiles.push_back(result.adversarial[i].cpu());
    tiles.push_back(heatmap(result.adversarial_map[i]));
  }
  const std::string path = dir + "/" + name + ".png";
  const int64_t scale = std::max<int64_t>(1, 112 / x.size(-1));
  write_panel(path, tiles, 4, scale);
  std::cout << "wrote " << path << " (rows: image | " << explainer_title(c.explainer)
            << " map | attacked image | attacked map; top-"
            << c.eval_k << " intersection per row:";
  for (int64_t i = 0; i < in.size(0); ++i)
    std::cout << " " << std::setprecision(2) << in[i].item<double>();
  std::cout << ")" << std::endl;
}

}  // namespace examples
}  // namespace rar
