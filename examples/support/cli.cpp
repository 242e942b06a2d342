#include "support/cli.hpp"

#include "support/heap.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <thread>
#include <iostream>

namespace rar {
namespace examples {
namespace {

struct Common {
  std::string data, dataset_name, device = "cpu", preset = "quick";
  int threads = 0;
  uint64_t seed = 0;
};

void add_common(CLI::App* app, Common& c, bool mnist) {
  app->add_option("--data", c.data,
                  "data directory (MNIST/Fashion-MNIST: the IDX files; GTSRB: "
                  "the folder with Final_Training/ and Final_Test/; Flower-17: "
                  "the jpg folder)");
  if (mnist)
    app->add_option("--dataset", c.dataset_name, "fashion-mnist (default) or mnist")
        ->check(CLI::IsMember({"fashion-mnist", "mnist"}));
  app->add_option("--device", c.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--preset", c.preset, "paper (the paper's settings) or quick (minutes on a CPU)")
      ->check(CLI::IsMember({"paper", "quick"}));
  app->add_option("--threads", c.threads, "intra-op threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--seed", c.seed, "random seed");
}

// LibTorch may default to one thread (Debian's does on small machines): use every core unless
// told otherwise.
void apply_threads(const Common& c) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(c.threads > 0 ? c.threads : cores);
}

torch::Device pick_device(const std::string& name) {
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw std::runtime_error("--device cuda: CUDA is not available");
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

DatasetKind resolve(DatasetKind kind, const Common& c) {
  if (kind == DatasetKind::fashion_mnist && c.dataset_name == "mnist") return DatasetKind::mnist;
  return kind;
}

Dataset load(DatasetKind kind, const Common& c, Split split) {
  switch (kind) {
    case DatasetKind::fashion_mnist:
      return load_mnist(c.data.empty() ? kDebianFashionMnistDir : c.data, split);
    case DatasetKind::mnist:
      if (c.data.empty())
        throw std::runtime_error("--data: give the MNIST directory (see docs/reproduce.md)");
      return load_mnist(c.data, split);
    case DatasetKind::gtsrb:
      if (c.data.empty())
        throw std::runtime_error("--data: give the GTSRB directory (see docs/reproduce.md)");
      return load_gtsrb(c.data, split);
    case DatasetKind::flower:
      if (c.data.empty())
        throw std::runtime_error(
            "--data: give the Flower-17 jpg directory (see docs/reproduce.md)");
      return load_flower17(c.data, split);
  }
  throw std::logic_error("unknown data set");
}

Dataset first(const Dataset& d, int64_t count) {
  if (count <= 0 || count >= d.size()) return d;
  return Dataset{d.images.slice(0, 0, count), d.labels.slice(0, 0, count), d.classes};
}

}  // namespace

int run_cli(const std::string& program, DatasetKind dataset, int argc, char** argv) {
  keep_large_buffers_on_heap();
  const bool mnist = dataset == DatasetKind::fashion_mnist;
  CLI::App app{program +
               ": reproduce 'Robust Attribution Regularization' (Chen et al., NeurIPS 2019)"};
  app.require_subcommand(1);

  Common train_c, eval_c, explain_c;
  std::string method = "natural", out = "model.pt";
  int64_t steps = 0, checkpoint_every = -1, train_limit = 0, batch_size = 0;
  double seconds = -1;
  bool resume = false;
  std::string method_list;
  for (const std::string& name : method_names())
    method_list += (method_list.empty() ? "" : ", ") + name;
  auto* train_cmd = app.add_subcommand("train", "train a model (" + method_list + ")");
  add_common(train_cmd, train_c, mnist);
  train_cmd->add_option("--method", method, "training objective")
      ->check(CLI::IsMember(method_names()));
  train_cmd->add_option("--out", out, "checkpoint file (written atomically, resumable)");
  train_cmd->add_option("--steps", steps, "stop after this many steps (default: the preset's)")
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--seconds", seconds, "stop after this many seconds (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--checkpoint-every", checkpoint_every, "steps between checkpoints")
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--train-images", train_limit, "use only the first N training images")
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--batch-size", batch_size, "images per step (default: the preset's)")
      ->check(CLI::PositiveNumber);
  train_cmd->add_flag("--resume", resume, "continue from --out if it exists");

  // --explainer on eval and explain: the method whose maps IN/CO measure.
  std::string eval_explainer = explainer_name(Explainer::ig),
              explain_explainer = explainer_name(Explainer::ig);
  auto add_explainer = [](CLI::App* cmd, std::string& name) {
    cmd->add_option("--explainer", name,
                    "attribution method whose maps are measured and attacked (default: ig; "
                    "deeplift is attacked through the surrogate's IG)")
        ->check(CLI::IsMember(explainer_names()));
  };

  std::vector<std::string> models;
  std::string results_prefix;
  int64_t accuracy_images = -1, attack_images = -1, iterations = -1, measure_every = 0,
          ig_steps = 0, eval_batch = 0;
  auto* eval_cmd = app.add_subcommand("eval", "print NA, AA, IN, CO for one or more models");
  add_common(eval_cmd, eval_c, mnist);
  eval_cmd->add_option("--model", models, "NAME=checkpoint (repeatable), e.g. NATURAL=natural.pt")
      ->required();
  eval_cmd->add_option("--results", results_prefix, "also write <prefix>.csv and <prefix>.json");
  eval_cmd->add_option("--accuracy-images", accuracy_images, "test images for NA/AA (0: all)")
      ->check(CLI::NonNegativeNumber);
  eval_cmd->add_option("--attack-images", attack_images, "images attacked for IN/CO")
      ->check(CLI::PositiveNumber);
  eval_cmd->add_option("--attack-iterations", iterations, "iterations of the top-k attack")
      ->check(CLI::NonNegativeNumber);
  eval_cmd->add_option("--measure-every", measure_every,
                       "measure the real map every N attack iterations (default: the preset's)")
      ->check(CLI::PositiveNumber);
  eval_cmd->add_option("--ig-steps", ig_steps, "IG points of the measured maps")
      ->check(CLI::PositiveNumber);
  eval_cmd->add_option("--batch-size", eval_batch, "images per evaluation batch")
      ->check(CLI::PositiveNumber);
  add_explainer(eval_cmd, eval_explainer);

  std::string model_path, out_dir = "explain";
  int64_t count = 6;
  auto* explain_cmd = app.add_subcommand(
      "explain", "write PNG panels: image | map | attacked image | attacked map");
  add_common(explain_cmd, explain_c, mnist);
  explain_cmd->add_option("--model", model_path, "checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  explain_cmd->add_option("--out", out_dir, "output directory");
  explain_cmd->add_option("--count", count, "images per panel")->check(CLI::PositiveNumber);
  add_explainer(explain_cmd, explain_explainer);
  bool sanity = false;
  explain_cmd->add_flag("--sanity", sanity,
                        "also print the model-parameter randomization test (Adebayo et al. 2018)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (train_cmd->parsed()) {
      const auto kind = resolve(dataset, train_c);
      apply_threads(train_c);
      TrainConfig train;
      EvalConfig eval;
      apply_preset(kind, train_c.preset, parse_method(method), train, eval);
      train.seed = train_c.seed;
      if (steps > 0) {
        train.max_steps = steps;
        if (seconds < 0) train.max_seconds = 0;
      }
      if (seconds >= 0) train.max_seconds = seconds;
      if (checkpoint_every > 0) train.checkpoint_every = checkpoint_every;
      if (batch_size > 0) train.batch_size = batch_size;
      const Dataset data = first(load(kind, train_c, Split::train), train_limit);
      train.net.classes = data.classes;
      torch::manual_seed(train.seed);
      Net net(train.net);
      const int64_t done =
          examples::train(net, data, train, pick_device(train_c.device), out, resume);
      std::cout << "trained " << method_title(train.method) << " for " << done << " steps: " << out
                << std::endl;
    } else if (eval_cmd->parsed()) {
      const auto kind = resolve(dataset, eval_c);
      apply_threads(eval_c);
      TrainConfig train;
      EvalConfig eval;
      apply_preset(kind, eval_c.preset, Method::natural, train, eval);
      eval.seed = eval_c.seed;
      if (accuracy_images >= 0) eval.accuracy_images = accuracy_images;
      if (attack_images > 0) eval.attack_images = attack_images;
      if (iterations >= 0) eval.attack_iterations = iterations;
      if (measure_every > 0) eval.measure_every = measure_every;
      if (ig_steps > 0) eval.ig_steps = ig_steps;
      if (eval_batch > 0) eval.batch_size = eval_batch;
      eval.explainer = parse_explainer(eval_explainer);
      const Dataset test = load(kind, eval_c, Split::test);
      const torch::Device device = pick_device(eval_c.device);
      const std::string note = attack_gradient_note(explainer_config(eval), eval.surrogate_beta);
      if (!note.empty()) std::cout << note << std::endl;
      std::vector<EvalResult> results;
      for (const auto& spec : models) {
        const auto eq = spec.find('=');
        const std::string name = eq == std::string::npos ? spec : spec.substr(0, eq);
        const std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
        Net net = load_model(path);
        results.push_back(evaluate(net, test, eval, device, name));
      }
      report(results, results_prefix);
    } else if (explain_cmd->parsed()) {
      const auto kind = resolve(dataset, explain_c);
      apply_threads(explain_c);
      TrainConfig train;
      EvalConfig eval;
      apply_preset(kind, explain_c.preset, Method::natural, train, eval);
      eval.seed = explain_c.seed;
      eval.explainer = parse_explainer(explain_explainer);
      const Dataset test = load(kind, explain_c, Split::test);
      Net net = load_model(model_path);
      const std::string note = attack_gradient_note(explainer_config(eval), eval.surrogate_beta);
      if (!note.empty()) std::cout << note << std::endl;
      const std::string name = std::filesystem::path(model_path).stem().string();
      explain(net, test, eval, pick_device(explain_c.device), out_dir, name, count);
      if (sanity) sanity_check(net, test, eval, pick_device(explain_c.device), 16);
    }
  } catch (const std::exception& e) {
    std::string message = e.what();
    const auto newline = message.find('\n');
    std::cerr << program << ": error: " << message.substr(0, newline) << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace examples
}  // namespace rar
