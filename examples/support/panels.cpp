#include <algorithm>
#include <chrono>
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
  // The panel's images are the first of those `eval` attacks, and the β is `eval`'s: chosen on
  // all of them (a handful of images would pass a small β that the table's attack rejects).
  const auto attacked =
      correctly_classified(net, test, std::max(count, c.attack_images), device, c.batch_size);
  if (attacked.size(0) == 0)
    throw std::runtime_error("explain: the model classifies none of the test images correctly");
  const double beta = evaluation_surrogate_beta(net, method, test, attacked, c, device, name);
  const auto picked = attacked.slice(0, 0, std::min<int64_t>(count, attacked.size(0)));
  const auto x = test.images.index_select(0, picked).to(device);
  const auto y = test.labels.index_select(0, picked).to(device);
  const auto result = rar::attribution_attack(net, rar::smooth_surrogate(net, beta), method, x, y,
                                              attack_options(c));
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
            << c.eval_k << " intersection per row, surrogate beta " << beta << ":";
  for (int64_t i = 0; i < in.size(0); ++i)
    std::cout << " " << std::setprecision(2) << in[i].item<double>();
  std::cout << ")" << std::endl;
}

void compare_explainers(Net& net, const Dataset& test, const EvalConfig& c, torch::Device device,
                        const std::string& dir, const std::string& name, int64_t count,
                        const std::vector<Explainer>& explainers) {
  net->to(device);
  net->eval();
  std::filesystem::create_directories(dir);
  const auto picked = correctly_classified(net, test, count, device, c.batch_size);
  const auto x = test.images.index_select(0, picked).to(device);
  const auto y = test.labels.index_select(0, picked).to(device);
  const int64_t n = picked.size(0);
  std::vector<torch::Tensor> tiles;
  std::vector<std::string> titles = {"image"};
  for (int64_t i = 0; i < n; ++i) tiles.push_back(x[i].cpu());
  for (const Explainer e : explainers) {
    ExplainerConfig config = explainer_config(c);
    config.kind = e;
    const auto method = make_explainer(config, net->config());
    const auto start = std::chrono::steady_clock::now();
    const auto maps = rar::attribution_map(method(net, x, y, false));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (int64_t i = 0; i < n; ++i) tiles.push_back(heatmap(maps[i]));
    titles.push_back(explainer_title(e));
    std::cout << "  " << std::left << std::setw(18) << explainer_title(e) << std::right
              << std::fixed << std::setprecision(2) << seconds << " s for " << n << " images"
              << std::endl;
    std::cout.unsetf(std::ios::floatfield);
  }
  // The maps in a grid, one row per method, with the method's name left of its row.
  const int64_t scale = std::max<int64_t>(1, 112 / x.size(-1));
  const int64_t gap = 2;
  const Raster grid = tensor_to_raster(make_panel(tiles, n, scale, gap));
  const int text_scale = 2;
  int margin = 0;
  for (const auto& t : titles) margin = std::max(margin, text_width(t, text_scale));
  margin += 12;
  Raster canvas{grid.width + margin, grid.height, 3,
                std::vector<std::uint8_t>(static_cast<size_t>(grid.width + margin) * grid.height * 3, 255)};
  for (int yy = 0; yy < grid.height; ++yy)
    for (int xx = 0; xx < grid.width; ++xx)
      for (int ch = 0; ch < 3; ++ch)
        canvas.pixels[(static_cast<size_t>(yy) * canvas.width + xx + margin) * 3 + ch] =
            grid.pixels[(static_cast<size_t>(yy) * grid.width + xx) * grid.channels +
                        (grid.channels == 3 ? ch : 0)];
  const int row_height = static_cast<int>(x.size(-2) * scale + gap);
  const std::uint8_t black[3] = {0, 0, 0};
  for (size_t r = 0; r < titles.size(); ++r)
    draw_text(canvas, 4,
              static_cast<int>(r) * row_height + (row_height - text_height(titles[r], text_scale)) / 2,
              titles[r], black, text_scale);
  const std::string path = dir + "/" + name + "-explainers.png";
  write_image(path, raster_to_tensor(canvas));
  std::cout << "wrote " << path << " (rows: image, then one row per method; the same " << n
            << " correctly classified test images in every row)" << std::endl;
}

}  // namespace examples
}  // namespace rar
