#include "support/experiment.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <sys/resource.h>

#include "support/image.hpp"
#include "support/names.hpp"

namespace rar {
namespace examples {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// User + system CPU time of the whole process (every thread), in seconds.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream out;
  if (s >= 3600)
    out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  else if (s >= 60)
    out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else
    out << s << "s";
  return out.str();
}

// Class indices predicted by `net`, computed in batches without a graph.
torch::Tensor predict(Net& net, const torch::Tensor& images, torch::Device device, int64_t batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch) {
    const auto x = images.slice(0, i, std::min(images.size(0), i + batch)).to(device);
    out.push_back(net->forward(x).argmax(1).cpu());
  }
  return torch::cat(out);
}

rar::AttributionAttackOptions attack_options(const EvalConfig& config) {
  return rar::AttributionAttackOptions()
      .kind(rar::AttackKind::top_k)
      .k(config.attack_k)
      .epsilon(config.epsilon)
      .step_size(config.attack_step_size)
      .iterations(config.attack_iterations)
      .measure_every(config.measure_every)
      .seed(config.seed);
}

// The first `count` test images the net classifies correctly (indices into `test`).
torch::Tensor correctly_classified(Net& net, const Dataset& test, int64_t count,
                                   torch::Device device, int64_t batch) {
  std::vector<int64_t> picked;
  for (int64_t i = 0; i < test.size() && static_cast<int64_t>(picked.size()) < count; i += batch) {
    const int64_t end = std::min(test.size(), i + batch);
    const auto pred = predict(net, test.images.slice(0, i, end), device, batch);
    const auto ok = pred.eq(test.labels.slice(0, i, end));
    for (int64_t j = 0; j < end - i && static_cast<int64_t>(picked.size()) < count; ++j)
      if (ok[j].item<bool>()) picked.push_back(i + j);
  }
  return torch::tensor(picked, torch::kLong);
}

}  // namespace

namespace {

/// Each training method's command-line name and its title in the results table: `train
/// --method`, `compare --methods`, the objectives and every table read this one list.
constexpr Named<Method> kMethods[] = {{Method::natural, "natural", "NATURAL"},
                                      {Method::madry, "madry", "Madry"},
                                      {Method::ig_norm, "ig-norm", "IG-NORM"},
                                      {Method::ig_sum_norm, "ig-sum-norm", "IG-SUM-NORM"},
                                      {Method::input_grad, "input-grad", "INPUT-GRAD"},
                                      {Method::ssr, "ssr", "SSR"},
                                      {Method::art, "art", "ART"},
                                      {Method::alignment, "alignment", "ALIGNMENT"},
                                      {Method::distributional, "distributional", "DISTRIBUTIONAL"}};

enum class Preset { paper, quick };
/// The presets (`--preset`).
constexpr Named<Preset> kPresets[] = {{Preset::paper, "paper", "paper"},
                                      {Preset::quick, "quick", "quick"}};

}  // namespace

Method parse_method(const std::string& name) { return parse_name(kMethods, name, "method"); }

std::string method_name(Method method) { return table_entry(kMethods, method).name; }

std::string method_title(Method method) { return table_entry(kMethods, method).title; }

std::vector<std::string> method_names() { return table_names(kMethods); }

std::vector<Method> all_methods() {
  std::vector<Method> methods;
  for (const auto& entry : kMethods) methods.push_back(entry.value);
  return methods;
}

std::vector<Method> parse_method_list(const std::string& names) {
  std::vector<Method> methods;
  size_t begin = 0;
  while (true) {
    const size_t comma = names.find(',', begin);
    const std::string name =
        names.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    const Method method = parse_method(name);
    if (std::find(methods.begin(), methods.end(), method) != methods.end())
      throw std::invalid_argument("method '" + name + "' is listed twice");
    methods.push_back(method);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return methods;
}

std::vector<std::string> preset_names() { return table_names(kPresets); }

ExplainerConfig explainer_config(const EvalConfig& c) {
  ExplainerConfig e;
  e.kind = c.explainer;
  e.ig_steps = c.ig_steps;
  e.graph_ig_steps = c.surrogate_ig_steps;
  e.smoothgrad_samples = c.smoothgrad_samples;
  e.smoothgrad_stddev = c.smoothgrad_stddev;
  e.seed = c.seed;
  return e;
}

void apply_preset(DatasetKind dataset, const std::string& preset, Method method, TrainConfig& train,
                  EvalConfig& eval) {
  const bool quick = parse_name(kPresets, preset, "preset") == Preset::quick;
  train.method = method;
  switch (dataset) {
    case DatasetKind::mnist:
    case DatasetKind::fashion_mnist: {
      const bool fashion = dataset == DatasetKind::fashion_mnist;
      train.net = NetConfig{};
      train.net.arch = Architecture::mnist_cnn;
      train.epsilon = eval.epsilon = fashion ? 0.1 : 0.3;
      train.attack_steps = fashion ? 20 : 40;
      train.attack_step_size = eval.pgd_step_size = eval.attack_step_size = 0.01;
      train.ig_steps = 50;
      train.inner_stride = 5;
      train.lambda = 1.0;
      train.beta = 0.1;
      train.art_surrogate_beta = 10.0;  // the evaluation's surrogate β on these models
      train.batch_size = 50;
      train.optimizer = "adam";
      train.learning_rate = 1e-3;
      train.max_steps = 100000;
      eval.pgd_steps = fashion ? 20 : 40;
      eval.attack_k = fashion ? 100 : 200;
      eval.eval_k = 100;
      eval.attack_iterations = 100;
      eval.ig_steps = 100;
      eval.accuracy_images = 0;
      eval.attack_images = 200;
      if (quick) {
        // The notes' reduced protocol: a small CNN, IG-NORM with m = 10 and 5 inner steps.
        train.net.conv1 = 16;
        train.net.conv2 = 32;
        train.net.fc = 128;
        train.ig_steps = 10;
        train.attack_steps = 5;
        train.max_seconds = method == Method::natural ? 30 : 240;
        eval.pgd_steps = 20;
        eval.accuracy_images = 1000;
        eval.attack_images = 100;
        // Maps of 20 right-Riemann points give the same IN/CO as 50 or 100 on these models
        // (measured), at a fraction of the cost of checking every attack iterate.
        eval.ig_steps = 20;
        eval.surrogate_ig_steps = 10;
        eval.surrogate_beta = 10.0;
        eval.batch_size = 50;
      }
      break;
    }
    case DatasetKind::gtsrb:
    case DatasetKind::flower: {
      const bool flower = dataset == DatasetKind::flower;
      train.net = NetConfig{};
      train.net.arch = Architecture::resnet;
      train.net.in_channels = 3;
      train.net.image_size = flower ? 128 : 32;
      train.net.classes = flower ? 17 : 43;
      train.net.units_per_stage = flower ? 1 : 2;
      train.net.leaky_slope = 0.1;
      train.net.standardize = true;
      // The paper works on the 0-255 scale: ε = 8, PGD 7 steps of 2; here pixels are in [0, 1].
      train.epsilon = eval.epsilon = 8.0 / 255.0;
      train.attack_steps = eval.pgd_steps = 7;
      train.attack_step_size = eval.pgd_step_size = 2.0 / 255.0;
      train.ig_steps = 50;
      train.inner_stride = 10;
      train.lambda = flower ? 0.1 : 1.0;
      train.beta = flower ? 0.1 : 1.0;
      train.art_surrogate_beta = eval.surrogate_beta;
      train.batch_size = flower ? 16 : 64;
      train.optimizer = "momentum";
      train.weight_decay = 2e-4;
      const bool small_lr = flower && (method == Method::ig_norm || method == Method::ig_sum_norm);
      const double base = small_lr ? 1e-4 : 1e-3;
      train.lr_schedule = {{0, base}, {500, 10 * base}, {60000, base}};
      train.learning_rate = base;
      train.max_steps = 70001;
      train.augment = flower;
      eval.attack_k = eval.eval_k = flower ? 1000 : 100;
      eval.attack_iterations = flower ? 100 : 50;
      eval.attack_step_size = 1.0 / 255.0;
      eval.ig_steps = 100;
      eval.accuracy_images = 0;
      eval.attack_images = 200;
      eval.batch_size = flower ? 8 : 50;
      if (quick) {
        train.net.units_per_stage = 1;
        train.ig_steps = 10;
        train.inner_stride = 5;
        train.attack_steps = 3;
        train.max_seconds = method == Method::natural ? 120 : 480;
        eval.accuracy_images = 500;
        eval.attack_images = 50;
        eval.ig_steps = 30;
        eval.attack_iterations = 30;
      }
      break;
    }
  }
}

std::function<torch::Tensor(Net&, const torch::Tensor&, const torch::Tensor&)> make_objective(
    const TrainConfig& c, int64_t step) {
  const uint64_t seed = c.seed * 1000003ULL + static_cast<uint64_t>(step);
  auto wrap = [](auto term) {
    return [term](Net& net, const torch::Tensor& x, const torch::Tensor& y) {
      return term(net, x, y);
    };
  };
  switch (c.method) {
    case Method::natural:
      return wrap(rar::cross_entropy());
    case Method::madry:
      return wrap(rar::adversarial(rar::PGDOptions()
                                       .epsilon(c.epsilon)
                                       .steps(c.attack_steps)
                                       .step_size(c.attack_step_size)
                                       .seed(seed)));
    case Method::ig_norm:
      return wrap(rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions()
                                                          .epsilon(c.epsilon)
                                                          .steps(c.ig_steps)
                                                          .inner_stride(c.inner_stride)
                                                          .attack_steps(c.attack_steps)
                                                          .attack_step_size(c.attack_step_size)
                                                          .lambda(c.lambda)
                                                          .seed(seed)));
    case Method::ig_sum_norm:
      return wrap(rar::ig_sum_norm(rar::IGSumNormOptions()
                                       .epsilon(c.epsilon)
                                       .steps(c.ig_steps)
                                       .inner_stride(c.inner_stride)
                                       .attack_steps(c.attack_steps)
                                       .attack_step_size(c.attack_step_size)
                                       .beta(c.beta)
                                       .seed(seed)));
    case Method::input_grad:
      return wrap(rar::cross_entropy() +
                  rar::input_gradient_norm(
                      rar::InputGradientOptions().epsilon(c.epsilon).lambda(c.lambda)));
    case Method::ssr:
      return wrap(rar::ssr(rar::SSROptions().alpha(c.ssr_alpha).scale(c.ssr_scale)));
    case Method::art:
      return wrap(rar::art(rar::ARTOptions()
                               .epsilon(c.epsilon)
                               .attack_steps(c.art_attack_steps)
                               .attack_step_size(c.art_step_fraction * c.epsilon)
                               .lambda(c.art_lambda)
                               .surrogate_beta(c.art_surrogate_beta)
                               .seed(seed)));
    case Method::alignment:
      return wrap(rar::attribution_alignment(rar::AlignmentOptions()
                                                 .epsilon(c.epsilon)
                                                 .attack_steps(c.attack_steps)
                                                 .attack_step_size(c.attack_step_size)
                                                 .lambda(c.alignment_lambda)
                                                 .ig(rar::IGOptions().steps(c.ig_steps))
                                                 .seed(seed)));
    case Method::distributional:
      return wrap(rar::distributional_ig(rar::DistributionalIGOptions()
                                             .beta(c.beta)
                                             .gamma(c.distributional_gamma)
                                             .steps(c.ig_steps)
                                             .inner_stride(c.inner_stride)
                                             .attack_steps(c.attack_steps)
                                             .attack_step_size(c.distributional_step_size)
                                             .seed(seed)));
  }
  throw std::logic_error("make_objective: unknown method");
}

void save_checkpoint(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                     int64_t step, const TrainProgress* time) {
  torch::serialize::OutputArchive archive, model_archive;
  net->save(model_archive);
  archive.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("step", torch::tensor(step, torch::kLong));
  if (time) {
    archive.write("seconds", torch::tensor(time->seconds, torch::kDouble));
    archive.write("cpu_seconds", torch::tensor(time->cpu_seconds, torch::kDouble));
  }
  const NetConfig& nc = net->config();
  archive.write("net_config",
                torch::tensor({static_cast<double>(nc.arch), static_cast<double>(nc.in_channels),
                               static_cast<double>(nc.image_size), static_cast<double>(nc.classes),
                               static_cast<double>(nc.conv1), static_cast<double>(nc.conv2),
                               static_cast<double>(nc.fc), static_cast<double>(nc.units_per_stage),
                               nc.leaky_slope, nc.standardize ? 1.0 : 0.0},
                              torch::kDouble));
  const std::string tmp = path + ".tmp";
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot write checkpoint: " + e.what_without_backtrace());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // atomic on POSIX: readers see old or new, never half
  if (ec) throw std::runtime_error(path + ": cannot move checkpoint into place: " + ec.message());
}

int64_t load_checkpoint(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                        TrainProgress* time) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(path + ": no such checkpoint file");
  try {
    torch::serialize::InputArchive archive, model_archive;
    archive.load_from(path);
    archive.read("model", model_archive);
    net->load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (archive.try_read("optimizer", optimizer_archive)) optimizer->load(optimizer_archive);
    }
    torch::Tensor step, seconds, cpu_seconds;
    archive.read("step", step);
    if (time) {
      time->steps = step.item<int64_t>();
      time->seconds = archive.try_read("seconds", seconds) ? seconds.item<double>() : 0.0;
      time->cpu_seconds =
          archive.try_read("cpu_seconds", cpu_seconds) ? cpu_seconds.item<double>() : 0.0;
    }
    return step.item<int64_t>();
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a checkpoint of this model (" +
                             std::string(e.what_without_backtrace()).substr(0, 160) + ")");
  }
}

Net load_model(const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(path + ": no such checkpoint file");
  torch::Tensor v;
  torch::serialize::InputArchive archive, model_archive;
  try {
    archive.load_from(path);
    archive.read("net_config", v);
    archive.read("model", model_archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a rar example checkpoint (" +
                             std::string(e.what_without_backtrace()).substr(0, 160) + ")");
  }
  if (v.numel() != 10) throw std::runtime_error(path + ": malformed net_config in checkpoint");
  auto at = [&](int64_t i) { return v[i].item<double>(); };
  NetConfig nc;
  nc.arch = static_cast<Architecture>(static_cast<int>(at(0)));
  nc.in_channels = static_cast<int64_t>(at(1));
  nc.image_size = static_cast<int64_t>(at(2));
  nc.classes = static_cast<int64_t>(at(3));
  nc.conv1 = static_cast<int64_t>(at(4));
  nc.conv2 = static_cast<int64_t>(at(5));
  nc.fc = static_cast<int64_t>(at(6));
  nc.units_per_stage = static_cast<int64_t>(at(7));
  nc.leaky_slope = at(8);
  nc.standardize = at(9) != 0.0;
  Net net(nc);
  // The network takes the dtype its parameters were saved in (a float64 model stays float64).
  // Module::save nests one archive per submodule: follow the first parameter's dotted name.
  const auto parameters = net->named_parameters();
  if (parameters.size() > 0) {
    const std::string& key = parameters[0].key();
    torch::serialize::InputArchive* level = &model_archive;
    std::vector<torch::serialize::InputArchive> path_archives;
    path_archives.reserve(static_cast<size_t>(std::count(key.begin(), key.end(), '.')));
    size_t begin = 0;
    bool found = true;
    for (size_t dot; found && (dot = key.find('.', begin)) != std::string::npos; begin = dot + 1) {
      path_archives.emplace_back();
      found = level->try_read(key.substr(begin, dot - begin), path_archives.back());
      level = &path_archives.back();
    }
    torch::Tensor first;
    if (found && level->try_read(key.substr(begin), first) && first.is_floating_point())
      net->to(first.scalar_type());
  }
  load_checkpoint(path, net, nullptr);
  net->eval();
  return net;
}

TrainProgress train(Net& net, const Dataset& data, const TrainConfig& c, torch::Device device,
                    const std::string& checkpoint, bool resume) {
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

EvalResult evaluate(Net& net, const Dataset& test, const EvalConfig& c, torch::Device device,
                    const std::string& name) {
  const auto method = make_explainer(explainer_config(c), net->config());  // checks it first
  net->to(device);
  net->eval();
  EvalResult r;
  r.name = name;
  const auto start = Clock::now();
  // NA and AA on the first `accuracy_images` test images.
  const int64_t count =
      c.accuracy_images > 0 ? std::min(c.accuracy_images, test.size()) : test.size();
  int64_t natural = 0, adversarial = 0;
  for (int64_t i = 0; i < count; i += c.batch_size) {
    const int64_t end = std::min(count, i + c.batch_size);
    const auto x = test.images.slice(0, i, end).to(device);
    const auto y = test.labels.slice(0, i, end).to(device);
    const auto x_adv = rar::pgd_attack(net, x, y,
                                       rar::PGDOptions()
                                           .epsilon(c.epsilon)
                                           .steps(c.pgd_steps)
                                           .step_size(c.pgd_step_size)
                                           .seed(c.seed + static_cast<uint64_t>(i)));
    torch::NoGradGuard no_grad;
    natural += net->forward(x).argmax(1).eq(y).sum().item<int64_t>();
    adversarial += net->forward(x_adv).argmax(1).eq(y).sum().item<int64_t>();
    std::cout << "  [" << name << "] NA/AA " << end << "/" << count << " images, "
              << format_duration(seconds_since(start)) << "\r" << std::flush;
  }
  std::cout << std::endl;
  r.accuracy_images = count;
  r.natural_accuracy = static_cast<double>(natural) / static_cast<double>(count);
  r.adversarial_accuracy = static_cast<double>(adversarial) / static_cast<double>(count);

  // IN and CO under the top-k attack on correctly classified images, batched.
  const auto picked = correctly_classified(net, test, c.attack_images, device, c.batch_size);
  auto surrogate = rar::smooth_surrogate(net, c.surrogate_beta);
  double in_sum = 0, co_sum = 0, kept = 0;
  const auto attack_start = Clock::now();
  for (int64_t i = 0; i < picked.size(0); i += c.batch_size) {
    const auto idx = picked.slice(0, i, std::min(picked.size(0), i + c.batch_size));
    const auto x = test.images.index_select(0, idx).to(device);
    const auto y = test.labels.index_select(0, idx).to(device);
    auto opts = attack_options(c);
    opts.seed(c.seed + static_cast<uint64_t>(i));
    const auto result = rar::attribution_attack(net, surrogate, method, x, y, opts);
    in_sum += rar::topk_intersection(result.original_map, result.adversarial_map, c.eval_k)
                  .sum()
                  .item<double>();
    co_sum += result.kendall_tau.nan_to_num(0.0).sum().item<double>();
    kept += result.prediction_kept.to(torch::kDouble).sum().item<double>();
    const double done = static_cast<double>(i + idx.size(0));
    const double elapsed = seconds_since(attack_start);
    std::cout << "  [" << name << "] attribution attack " << i + idx.size(0) << "/"
              << picked.size(0) << " images, " << format_duration(elapsed) << ", eta "
              << format_duration(elapsed / done * (static_cast<double>(picked.size(0)) - done))
              << std::endl;
  }
  r.attacked_images = picked.size(0);
  const double attacked = std::max<double>(1.0, static_cast<double>(r.attacked_images));
  r.topk_intersection = in_sum / attacked;
  r.kendall = co_sum / attacked;
  r.prediction_kept = kept / attacked;
  return r;
}

void report(const std::vector<EvalResult>& results, const std::string& prefix) {
  std::cout << "\n"
            << std::left << std::setw(14) << "model" << std::right << std::setw(9) << "NA"
            << std::setw(9) << "AA" << std::setw(9) << "IN" << std::setw(9) << "CO"
            << "\n";
  for (const auto& r : results) {
    std::cout << std::left << std::setw(14) << r.name << std::right << std::fixed
              << std::setprecision(2) << std::setw(8) << 100 * r.natural_accuracy << "%"
              << std::setw(8) << 100 * r.adversarial_accuracy << "%" << std::setw(8)
              << 100 * r.topk_intersection << "%" << std::setprecision(4) << std::setw(9)
              << r.kendall << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
  std::cout << "(NA/AA on " << (results.empty() ? 0 : results[0].accuracy_images)
            << " test images; IN/CO under the top-k attack on "
            << (results.empty() ? 0 : results[0].attacked_images)
            << " correctly classified ones)\n";
  if (prefix.empty()) return;
  std::ofstream csv(prefix + ".csv"), json(prefix + ".json");
  if (!csv || !json) throw std::runtime_error(prefix + ".csv/.json: cannot write the results");
  csv << "model,NA,AA,IN,CO,accuracy_images,attacked_images,prediction_kept\n";
  // Model names come from the command line (--model NAME=...): quoted in both files.
  json << "[\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    csv << csv_quote(r.name) << "," << r.natural_accuracy << "," << r.adversarial_accuracy << ","
        << r.topk_intersection << "," << r.kendall << "," << r.accuracy_images << ","
        << r.attacked_images << "," << r.prediction_kept << "\n";
    json << "  {\"model\": " << json_quote(r.name) << ", \"NA\": " << r.natural_accuracy
         << ", \"AA\": " << r.adversarial_accuracy << ", \"IN\": " << r.topk_intersection
         << ", \"CO\": " << r.kendall << ", \"accuracy_images\": " << r.accuracy_images
         << ", \"attacked_images\": " << r.attacked_images
         << ", \"prediction_kept\": " << r.prediction_kept << "}"
         << (i + 1 < results.size() ? "," : "") << "\n";
  }
  json << "]\n";
}

std::string csv_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", u);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

namespace {
std::string shortest(double value) {
  char text[32];
  for (int digits = 6; digits <= 17; ++digits) {  // the fewest digits that read back exactly
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}
}  // namespace

std::string json_number(double value) { return std::isfinite(value) ? shortest(value) : "null"; }

std::string csv_number(double value) { return std::isfinite(value) ? shortest(value) : ""; }

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

void sanity_check(Net& net, const Dataset& test, const EvalConfig& c, torch::Device device,
                  int64_t count) {
  net->to(device);
  net->eval();
  const auto picked = correctly_classified(net, test, count, device, c.batch_size);
  const auto x = test.images.index_select(0, picked).to(device);
  const auto y = test.labels.index_select(0, picked).to(device);
  const auto method = make_explainer(explainer_config(c), net->config());
  const auto steps = rar::parameter_randomization_test(
      net, method, x, y, rar::RandomizationOptions().k(c.eval_k).seed(c.seed));
  std::cout << "model-parameter randomization (cascading, from the output down) of the "
            << explainer_title(c.explainer) << " maps on " << picked.size(0) << " images:\n"
            << std::left << std::setw(22) << "randomized up to" << std::right << std::setw(10)
            << "Spearman" << std::setw(12) << ("top-" + std::to_string(c.eval_k)) << "\n";
  for (const auto& s : steps)
    std::cout << std::left << std::setw(22) << (s.layer.empty() ? "(trained model)" : s.layer)
              << std::right << std::fixed << std::setprecision(4) << std::setw(10) << s.spearman
              << std::setw(12) << s.topk_intersection << "\n";
  std::cout.unsetf(std::ios::floatfield);
  std::cout << "maps that stay similar after randomization do not reflect what the model learned"
            << std::endl;
}

}  // namespace examples
}  // namespace rar
