#include <rar/rar.hpp>
#include <iostream>

int main() {
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(784, 64), torch::nn::ReLU(),
                              torch::nn::Linear(64, 10));
  torch::optim::Adam optimizer(model->parameters(), 1e-3);
  torch::Tensor x = torch::rand({8, 784}), y = torch::randint(10, {8}, torch::kLong);

  // Train with IG-NORM: loss + λ·max ‖IG(x, x′)‖₁ over the ε-ball around x.
  auto objective = rar::cross_entropy() +
                   1.0 * rar::ig_norm(rar::IGNormOptions().epsilon(0.1).steps(10).attack_steps(5));
  optimizer.zero_grad();
  torch::Tensor loss = objective(model, x, y);
  loss.backward();
  optimizer.step();

  // Explain with Integrated Gradients, then measure how stable the map is under noise.
  auto ig = rar::IGOptions().target(y).steps(32);
  torch::Tensor map = rar::attribution_map(rar::integrated_gradients(model, x, ig));
  torch::Tensor noisy = rar::attribution_map(
      rar::integrated_gradients(model, (x + 0.01 * torch::randn_like(x)).clamp(0, 1), ig));
  std::cout << "loss " << loss.item<double>() << ", top-100 intersection "
            << rar::topk_intersection(map, noisy, 100).mean().item<double>() << ", Kendall "
            << rar::kendall_tau(map, noisy).mean().item<double>() << "\n";
}
