#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "support/experiment.hpp"
#include "support/progress.hpp"

// The training loop: seeded batches, the objective, progress lines, periodic checkpoints.

namespace rar {
namespace examples {

TrainProgress train(Net& net, const Dataset& data, const TrainConfig& c, torch::Device device,
                    const std::string& checkpoint, bool resume,
                    const std::function<void(Net&, const TrainProgress&)>& after_step) {
  if (data.size() < c.batch_size)
    throw std::runtime_error("training set has " + std::to_string(data.size()) +
                             " images, fewer than one batch of " + std::to_string(c.batch_size));
  torch::manual_seed(c.seed);
  net->to(device);
  net->train();
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (c.optimizer == "adam") {
    optimizer = std::make_unique<torch::optim::Adam>(
        net->parameters(), torch::optim::AdamOptions(c.learning_rate).weight_decay(c.weight_decay));
  } else {
    optimizer = std::make_unique<torch::optim::SGD>(
        net->parameters(),
        torch::optim::SGDOptions(c.learning_rate).momentum(0.9).weight_decay(c.weight_decay));
  }
  int64_t step = 0;
  TrainProgress before;  // the training time of the runs this one resumes
  if (resume && std::filesystem::exists(checkpoint)) {
    step = load_checkpoint(checkpoint, net, optimizer.get(), &before);
    std::cout << "resumed " << checkpoint << " at step " << step << std::endl;
  }
  const int64_t n = data.size();
  const int64_t per_epoch = n / c.batch_size;
  const std::string title = method_title(c.method);
  const auto start = Clock::now();
  const double cpu_start = process_cpu_seconds();
  const int64_t first_step = step;
  auto last_save = start;
  auto trained = [&] { return before.seconds + seconds_since(start); };
  auto progress = [&] {
    if (step == first_step) return TrainProgress{step, before.seconds, before.cpu_seconds};
    return TrainProgress{step, trained(), before.cpu_seconds + process_cpu_seconds() - cpu_start};
  };
  double loss_sum = 0;
  int64_t loss_count = 0;
  auto learning_rate = [&](int64_t s) {
    double lr = c.learning_rate;
    for (const auto& [from, rate] : c.lr_schedule)
      if (s >= from) lr = rate;
    return lr;
  };
  torch::Tensor order;
  int64_t order_epoch = -1;
  while (step < c.max_steps && (c.max_seconds <= 0 || trained() < c.max_seconds)) {
    // Batches depend only on (seed, step): the permutation of epoch e is seeded by (seed, e).
    const int64_t epoch = step / per_epoch;
    if (epoch != order_epoch) {
      auto gen = rar::seeded_generator(c.seed * 7919ULL + static_cast<uint64_t>(epoch));
      order = torch::randperm(n, gen, torch::kLong);
      order_epoch = epoch;
    }
    const auto idx =
        order.slice(0, (step % per_epoch) * c.batch_size, (step % per_epoch + 1) * c.batch_size);
    torch::Tensor x = data.images.index_select(0, idx);
    const torch::Tensor y = data.labels.index_select(0, idx).to(device);
    if (c.augment) {
      auto gen = rar::seeded_generator(c.seed * 104729ULL + static_cast<uint64_t>(step));
      x = augment_batch(x, gen);
    }
    x = x.to(device);
    for (auto& group : optimizer->param_groups())
      static_cast<torch::optim::OptimizerOptions&>(group.options()).set_lr(learning_rate(step));
    const auto objective = make_objective(c, step);
    optimizer->zero_grad();
    const torch::Tensor loss = objective(net, x, y);
    loss.backward();
    optimizer->step();
    ++step;
    loss_sum += loss.item<double>();
    ++loss_count;
    if (step % c.log_every == 0 || step == c.max_steps) {
      double accuracy;
      {
        torch::NoGradGuard no_grad;
        accuracy = net->forward(x).argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
      }
      const double elapsed = seconds_since(start);
      const double rate = static_cast<double>((step - first_step) * c.batch_size) / elapsed;
      const double by_steps = static_cast<double>(c.max_steps - step) * c.batch_size / rate;
      const double eta =
          c.max_seconds > 0 ? std::min(by_steps, c.max_seconds - trained()) : by_steps;
      std::cout << "[" << title << "] step " << step << "  loss " << std::fixed
                << std::setprecision(4) << loss_sum / static_cast<double>(loss_count)
                << "  batch acc " << std::setprecision(3) << accuracy << "  "
                << std::setprecision(1) << rate << " img/s  elapsed " << format_duration(elapsed)
                << "  eta " << format_duration(eta) << std::endl;
      std::cout.unsetf(std::ios::floatfield);
      loss_sum = 0;
      loss_count = 0;
    }
    if (after_step) after_step(net, progress());
    if (!checkpoint.empty() &&
        ((c.checkpoint_every > 0 && step % c.checkpoint_every == 0) ||
         (c.checkpoint_seconds > 0 && seconds_since(last_save) >= c.checkpoint_seconds))) {
      const TrainProgress now = progress();
      save_checkpoint(checkpoint, net, optimizer.get(), step, &now);
      last_save = Clock::now();
    }
  }
  const TrainProgress total = progress();
  if (!checkpoint.empty()) save_checkpoint(checkpoint, net, optimizer.get(), step, &total);
  net->eval();
  return total;
}

}  // namespace examples
}  // namespace rar
