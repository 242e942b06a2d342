#include "support/cli.hpp"
#include "support/experiment.hpp"

#include "support/compare.hpp"
#include "support/frontier.hpp"
#include "support/heap.hpp"
#include "support/names.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <thread>
#include <iostream>
#include <sstream>

namespace rar {
namespace examples {
namespace {

/// `--dataset` of rar_mnist.
constexpr Named<DatasetKind> kMnistDatasets[] = {
    {DatasetKind::fashion_mnist, "fashion-mnist", "Fashion-MNIST"},
    {DatasetKind::mnist, "mnist", "MNIST"}};

enum class DeviceKind { cpu, cuda };
/// `--device`.
constexpr Named<DeviceKind> kDevices[] = {{DeviceKind::cpu, "cpu", "CPU"},
                                          {DeviceKind::cuda, "cuda", "CUDA"}};

struct Common {
  std::string data, dataset_name, device = "cpu", preset = "quick";
  int threads = 0;
  uint64_t seed = 0;
};

void add_common(CLI::App* app, Common& c, bool mnist) {
  app->add_option("--data", c.data,
                  "data directory (MNIST/Fashion-MNIST: the IDX files, or for MNIST the mnist "
                  "package's folder (default: scripts/fetch-mnist's); GTSRB: "
                  "the folder with Final_Training/ and Final_Test/; Flower-17: "
                  "the jpg folder)");
  if (mnist)
    app->add_option("--dataset", c.dataset_name,
                    table_choices(kMnistDatasets) + " (default: fashion-mnist)")
        ->check(CLI::IsMember(table_names(kMnistDatasets)));
  app->add_option("--device", c.device, table_choices(kDevices))
      ->check(CLI::IsMember(table_names(kDevices)));
  app->add_option("--preset", c.preset, "paper (the paper's settings) or quick (minutes on a CPU)")
      ->check(CLI::IsMember(preset_names()));
  app->add_option("--threads", c.threads, "intra-op threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--seed", c.seed, "random seed");
}

// LibTorch may default to one thread (Debian's does on small machines): use every core unless
// told otherwise, with OpenBLAS on one thread beside LibTorch's own (support/heap.hpp).
void apply_threads(const Common& c) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(c.threads > 0 ? c.threads : cores);
  single_threaded_openblas();
}

torch::Device pick_device(const std::string& name) {
  if (parse_name(kDevices, name, "device") == DeviceKind::cuda) {
    if (!torch::cuda::is_available())
      throw std::runtime_error("--device cuda: CUDA is not available");
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

DatasetKind resolve(DatasetKind kind, const Common& c) {
  if (kind == DatasetKind::fashion_mnist && !c.dataset_name.empty())
    return parse_name(kMnistDatasets, c.dataset_name, "data set");
  return kind;
}

/// The evaluation flags, shared by `eval` and `compare` (0 or -1: the preset's value).
struct EvalFlags {
  int64_t accuracy_images = -1, attack_images = -1, iterations = -1, measure_every = 0,
          ig_steps = 0, surrogate_ig_steps = 0, batch = 0;
  bool metrics = false;
  int64_t strength_images = -1;
  std::string attack_measure;  ///< "" (the protocol's), "intersection", "kendall" or "lens"
  std::string surrogate_beta;  ///< "" or "auto" (chosen per model), or a number
  std::string protocol;        ///< the preset whose evaluation settings apply ("": --preset's)
  std::string explainer = explainer_name(Explainer::ig);
};

void add_eval_options(CLI::App* cmd, EvalFlags& f) {
  cmd->add_option("--protocol", f.protocol,
                  "evaluation settings of this preset, whatever --preset trained with: paper "
                  "(the paper's protocol for the data set) or quick (default: --preset's)")
      ->check(CLI::IsMember({"paper", "quick"}));
  cmd->add_option("--accuracy-images", f.accuracy_images, "test images for NA/AA (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--attack-images", f.attack_images, "images attacked for IN/CO")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--attack-iterations", f.iterations, "iterations of the top-k attack")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--measure-every", f.measure_every,
                  "measure the real map every N attack iterations (default: the preset's)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ig-steps", f.ig_steps, "IG points of the measured maps")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--surrogate-ig-steps", f.surrogate_ig_steps,
                  "IG points of the surrogate's maps, whose gradient drives the attack")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", f.batch, "images per evaluation batch")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--attack-measure", f.attack_measure,
                  "how the top-k attack picks its iterate: intersection (lowest top-k "
                  "intersection at the attack's k) or kendall (lowest Kendall's tau, the official "
                  "configs') or lens (lowest LENS recall: top-k features moved farthest); "
                  "default: the protocol's (paper: kendall, quick: intersection)")
      ->check(CLI::IsMember({"intersection", "kendall", "lens"}));
  cmd->add_option("--surrogate-beta", f.surrogate_beta,
                  "softplus beta of the attack's smooth surrogate: a number, or 'auto' for the "
                  "smallest of 1, 3, 10, 30, 100, 300 that predicts the model's class on 99% of "
                  "the attacked images and shares 90% of the top-k features of its maps, chosen "
                  "per model (default: auto)")
      ->check([](const std::string& v) -> std::string {
        if (v == "auto") return "";
        try {
          size_t used = 0;
          const double b = std::stod(v, &used);
          if (used == v.size() && b > 0 && std::isfinite(b)) return "";
        } catch (const std::exception&) {
        }
        return "must be 'auto' or a number > 0, got " + v;
      });
  cmd->add_option("--strength-images", f.strength_images,
                  "check the attack against the random-sign attack at the same budget on the "
                  "first N attacked images (0: off; default 20)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--metrics", f.metrics,
                "also report the maps' quality metrics on the attacked images: infidelity, "
                "deletion and insertion AUC, sparseness, complexity, faithfulness correlation; "
                "and their robustness beyond IN/CO: LENS recall/precision, the certified top-k "
                "radius, the local Lipschitz estimate, relative input stability");
}

// --explainer on eval, compare and explain: the method whose maps IN/CO measure.
void add_explainer(CLI::App* cmd, std::string& name) {
  cmd->add_option("--explainer", name,
                  "attribution method whose maps are measured and attacked (default: ig; "
                  "deeplift is attacked through the surrogate's IG)")
      ->check(CLI::IsMember(explainer_names()));
}

/// The evaluation settings of `kind` and `c`'s preset with the flags applied.
EvalConfig eval_config(DatasetKind kind, const Common& c, const EvalFlags& f) {
  TrainConfig train;
  EvalConfig eval;
  apply_preset(kind, f.protocol.empty() ? c.preset : f.protocol, Method::natural, train, eval);
  eval.seed = c.seed;
  if (f.accuracy_images >= 0) eval.accuracy_images = f.accuracy_images;
  if (f.attack_images > 0) eval.attack_images = f.attack_images;
  if (f.iterations >= 0) eval.attack_iterations = f.iterations;
  if (f.measure_every > 0) eval.measure_every = f.measure_every;
  if (f.ig_steps > 0) eval.ig_steps = f.ig_steps;
  if (f.surrogate_ig_steps > 0) eval.surrogate_ig_steps = f.surrogate_ig_steps;
  if (f.batch > 0) eval.batch_size = f.batch;
  if (!f.attack_measure.empty())
    eval.attack_measure = f.attack_measure == "kendall" ? rar::AttackMeasure::kendall_tau
                          : f.attack_measure == "lens"  ? rar::AttackMeasure::lens_recall
                                                        : rar::AttackMeasure::topk_intersection;
  eval.metrics = f.metrics;
  if (f.strength_images >= 0) eval.strength_images = f.strength_images;
  if (f.surrogate_beta == "auto") eval.surrogate_beta = 0;
  else if (!f.surrogate_beta.empty()) eval.surrogate_beta = std::stod(f.surrogate_beta);
  eval.explainer = parse_explainer(f.explainer);
  return eval;
}

/// One line that says which protocol the numbers are measured under.
std::string protocol_line(const EvalConfig& e) {
  std::ostringstream out;
  out << "protocol: eps " << e.epsilon << "; AA under PGD " << e.pgd_steps << " x "
      << e.pgd_step_size << " on "
      << (e.accuracy_images > 0 ? std::to_string(e.accuracy_images) : std::string("all"))
      << " test images; IN/CO on " << e.attack_images << " images, top-k attack k "
      << e.attack_k << " (" << e.attack_iterations << " iterations of " << e.attack_step_size
      << "), eval k " << e.eval_k << ", maps of " << e.ig_steps << " IG points, the attack's of "
      << e.surrogate_ig_steps << ", iterate of lowest "
      << (e.attack_measure == rar::AttackMeasure::kendall_tau   ? "Kendall's tau"
          : e.attack_measure == rar::AttackMeasure::lens_recall ? "LENS recall"
                                                                : "top-k intersection");
  return out.str();
}

Dataset load(DatasetKind kind, const Common& c, Split split) {
  switch (kind) {
    case DatasetKind::fashion_mnist:
      return load_mnist(c.data.empty() ? kDebianFashionMnistDir : c.data, split);
    case DatasetKind::mnist:
      return load_mnist_any(c.data, split);
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

/// The preset's training settings of `method` for `compare` and `frontier`: the run's seed, and
/// its batch size when `batch` > 0.
TrainConfig preset_train_config(DatasetKind kind, const Common& c, Method method, int64_t batch) {
  TrainConfig train;
  EvalConfig unused;
  apply_preset(kind, c.preset, method, train, unused);
  train.seed = c.seed;
  if (batch > 0) train.batch_size = batch;
  return train;
}

Dataset first(const Dataset& d, int64_t count) {
  if (count <= 0 || count >= d.size()) return d;
  return Dataset{d.images.slice(0, 0, count), d.labels.slice(0, 0, count), d.classes};
}

/// Prints, when the measured method is not differentiable, which map the attack follows.
void print_attack_note(const EvalConfig& eval) {
  const std::string note = attack_gradient_note(explainer_config(eval), eval.surrogate_beta);
  if (!note.empty()) std::cout << note << std::endl;
}

/// The evaluation settings a resumed `compare` or `frontier` run must match.
void write_eval_settings(std::ostream& out, const EvalConfig& eval) {
  out << " accuracy-images=" << eval.accuracy_images << " attack-images=" << eval.attack_images
      << " attack-iterations=" << eval.attack_iterations
      << " measure-every=" << eval.measure_every << " ig-steps=" << eval.ig_steps
      << " surrogate-ig-steps=" << eval.surrogate_ig_steps
      << " attack-measure=" << static_cast<int>(eval.attack_measure);
}

/// `--methods` parsed, or the default list; a bad name is reported as the flag's.
std::vector<Method> methods_flag(const std::string& flag, const std::string& fallback) {
  try {
    return parse_method_list(flag.empty() ? fallback : flag);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("--methods: ") + e.what());
  }
}

/// Every method's name, comma-separated.
std::string method_list() {
  std::string list;
  for (const std::string& name : method_names()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

/// `train`: one model, with the preset's settings and any of them overridden.
struct TrainCommand {
  CLI::App* cmd = nullptr;
  Common c;
  std::string method = "natural", out = "model.pt", quadrature, inner_objective, init;
  int64_t steps = 0, checkpoint_every = -1, train_limit = 0, batch_size = 0, ig_steps = 0,
          inner_stride = 0, inner_steps = -1, penalty_every = 0;
  double seconds = -1, inner_step = -1, lambda = -1, beta = -1, epsilon = 0, learning_rate = 0;
  bool resume = false;

  void define(CLI::App& app, bool mnist) {
    cmd = app.add_subcommand("train", "train a model (" + method_list() + ")");
    add_common(cmd, c, mnist);
    cmd->add_option("--method", method, "training objective")
        ->check(CLI::IsMember(method_names()));
    cmd->add_option("--out", out, "checkpoint file (written atomically, resumable)");
    cmd->add_option("--steps", steps, "stop after this many steps (default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--seconds", seconds, "stop after this many seconds (0: no limit)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--checkpoint-every", checkpoint_every, "steps between checkpoints")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--train-images", train_limit, "use only the first N training images")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--batch-size", batch_size, "images per step (default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--resume", resume, "continue from --out if it exists");
    cmd->add_option("--ig-steps", ig_steps,
                    "IG points m of the RAR objectives (default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--inner-stride", inner_stride,
                    "the inner maximization uses every N-th IG point (default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--inner-steps", inner_steps,
                    "ascent steps of the inner maximization and of Madry's PGD (default: the "
                    "preset's)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--inner-step-size", inner_step,
                    "step size of the inner ascent (and of Madry's PGD; default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--quadrature", quadrature,
                    "rule of the RAR terms' IG points: riemann-right (the paper's) or "
                    "gauss-legendre (default: the preset's)")
        ->check(CLI::IsMember({"riemann-right", "gauss-legendre"}));
    cmd->add_option("--inner-objective", inner_objective,
                    "what the RAR terms' inner ascent climbs: full (the term's objective) or "
                    "loss (the loss alone, first order; default: the preset's)")
        ->check(CLI::IsMember({"full", "loss"}));
    cmd->add_option("--penalty-every", penalty_every,
                    "the RAR terms' attribution penalty on every k-th step only, weighted k "
                    "(default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--lambda", lambda,
                    "weight lambda of the IG-NORM and input-gradient regularizers "
                    "(default: the preset's)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--beta", beta,
                    "weight beta of the attribution norm in IG-SUM-NORM and the "
                    "distributional objective (default: the preset's)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--epsilon", epsilon,
                    "radius of the training ball (default: the preset's, which the "
                    "evaluation keeps); the preset's inner step size scales with it")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--learning-rate", learning_rate,
                    "the optimizer's learning rate (default: the preset's)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--init", init,
                    "start from this checkpoint's weights (fine-tuning; same network), with "
                    "a fresh optimizer and step count; --resume of an existing --out wins")
        ->check(CLI::ExistingFile);
  }

  /// The preset's settings with the flags applied.
  TrainConfig config(DatasetKind kind) const {
    TrainConfig train;
    EvalConfig eval;
    apply_preset(kind, c.preset, parse_method(method), train, eval);
    train.seed = c.seed;
    if (steps > 0) {
      train.max_steps = steps;
      if (seconds < 0) train.max_seconds = 0;
    }
    if (seconds >= 0) train.max_seconds = seconds;
    if (checkpoint_every > 0) train.checkpoint_every = checkpoint_every;
    if (batch_size > 0) train.batch_size = batch_size;
    if (ig_steps > 0) train.ig_steps = ig_steps;
    if (inner_stride > 0) train.inner_stride = inner_stride;
    if (inner_steps >= 0) train.attack_steps = inner_steps;
    if (epsilon > 0) {
      train.attack_step_size *= epsilon / train.epsilon;
      train.epsilon = epsilon;
    }
    if (inner_step > 0) train.attack_step_size = inner_step;
    if (!quadrature.empty())
      train.quadrature = quadrature == "gauss-legendre" ? rar::Quadrature::gauss_legendre
                                                        : rar::Quadrature::riemann_right;
    if (!inner_objective.empty())
      train.inner_objective = inner_objective == "loss" ? rar::InnerObjective::loss
                                                        : rar::InnerObjective::full;
    if (penalty_every > 0) train.penalty_every = penalty_every;
    if (lambda >= 0) train.lambda = lambda;
    if (beta >= 0) train.beta = beta;
    if (learning_rate > 0) train.learning_rate = learning_rate;
    return train;
  }

  void run(DatasetKind dataset) const {
    const auto kind = resolve(dataset, c);
    apply_threads(c);
    TrainConfig train = config(kind);
    const Dataset data = first(load(kind, c, Split::train), train_limit);
    train.net.classes = data.classes;
    torch::manual_seed(train.seed);
    Net net(train.net);
    if (!init.empty()) {
      load_checkpoint(init, net, nullptr);
      std::cout << "starting from the weights of " << init << std::endl;
    }
    const TrainProgress done =
        examples::train(net, data, train, pick_device(c.device), out, resume);
    std::cout << "trained " << method_title(train.method) << " for " << done.steps
              << " steps: " << out << std::endl;
  }
};

/// `eval`: NA, AA, IN and CO of one or more checkpoints.
struct EvalCommand {
  CLI::App* cmd = nullptr;
  Common c;
  std::vector<std::string> models;
  std::string results_prefix;
  EvalFlags flags;

  void define(CLI::App& app, bool mnist) {
    cmd = app.add_subcommand("eval", "print NA, AA, IN, CO for one or more models");
    add_common(cmd, c, mnist);
    cmd->add_option("--model", models, "NAME=checkpoint (repeatable), e.g. NATURAL=natural.pt")
        ->required();
    cmd->add_option("--results", results_prefix, "also write <prefix>.csv and <prefix>.json");
    add_eval_options(cmd, flags);
    add_explainer(cmd, flags.explainer);
  }

  void run(DatasetKind dataset) const {
    const auto kind = resolve(dataset, c);
    apply_threads(c);
    const EvalConfig eval = eval_config(kind, c, flags);
    // Every checkpoint is read before the data and the first evaluation: a bad third file is
    // reported at once, not after the first two models' minutes of evaluation.
    std::vector<std::pair<std::string, Net>> nets;
    for (const auto& spec : models) {
      const auto eq = spec.find('=');
      const std::string name = eq == std::string::npos ? spec : spec.substr(0, eq);
      const std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
      nets.emplace_back(name, load_model(path));
    }
    const Dataset test = load(kind, c, Split::test);
    const torch::Device device = pick_device(c.device);
    // An explainer that does not suit a network is refused before anything is printed.
    for (auto& named : nets) make_explainer(explainer_config(eval), named.second->config());
    std::cout << protocol_line(eval) << std::endl;
    print_attack_note(eval);
    std::vector<EvalResult> results;
    for (auto& [name, net] : nets) results.push_back(evaluate(net, test, eval, device, name));
    report(results, results_prefix);
  }
};

/// The flags `compare` and `frontier` share: they train the selected methods, then evaluate.
struct SweepFlags {
  Common c;
  EvalFlags eval;
  std::string methods, prefix;
  int64_t train_limit = 0, batch = 0;
  bool resume = false;

  void add_training(CLI::App* cmd) {
    cmd->add_option("--train-images", train_limit, "use only the first N training images")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--train-batch-size", batch,
                    "images per training step, every method (default: the preset's)")
        ->check(CLI::PositiveNumber);
  }
  void add_results(CLI::App* cmd, const std::string& results_help,
                   const std::string& resume_help) {
    cmd->add_option("--results", prefix, results_help);
    cmd->add_flag("--resume", resume, resume_help);
    add_eval_options(cmd, eval);
    add_explainer(cmd, eval.explainer);
  }
  /// The preset's training settings of a method, with the run's seed and batch size.
  std::function<TrainConfig(Method)> train_config(DatasetKind kind) const {
    return [kind, c = c, batch = batch](Method method) {
      return preset_train_config(kind, c, method, batch);
    };
  }
  /// The protocol whose evaluation settings apply (for the resume settings).
  std::string protocol() const { return eval.protocol.empty() ? c.preset : eval.protocol; }
  /// Loads the data, runs `sweep(train_config, data, test, device)` and says what it wrote.
  template <class Sweep>
  void run_sweep(DatasetKind kind, const EvalConfig& eval_config, Sweep&& sweep) const {
    print_attack_note(eval_config);
    const Dataset data = first(load(kind, c, Split::train), train_limit);
    const Dataset test = load(kind, c, Split::test);
    sweep(train_config(kind), data, test, pick_device(c.device));
    std::cout << "wrote " << prefix << ".csv, " << prefix << ".json and " << prefix << ".png"
              << std::endl;
  }
};

/// `compare`: every selected method trained for the same time, then evaluated.
struct CompareCommand {
  CLI::App* cmd = nullptr;
  SweepFlags f;
  double seconds = 120;

  void define(CLI::App& app, bool mnist) {
    f.prefix = "compare";
    cmd = app.add_subcommand(
        "compare",
        "train every selected method for the same time, then print NA, AA, IN, CO of each");
    add_common(cmd, f.c, mnist);
    cmd->add_option("--methods", f.methods,
                    "comma-separated training methods (default: all of " + method_list() + ")");
    cmd->add_option("--seconds", seconds, "training time per method, wall clock (default 120)")
        ->check(CLI::PositiveNumber);
    f.add_training(cmd);
    f.add_results(cmd,
                  "write <prefix>.csv, .json, .png, the state <prefix>.state and the "
                  "checkpoints <prefix>.<method>.pt (default: compare)",
                  "skip the methods <prefix>.state has finished, continue the others from "
                  "their checkpoints");
  }

  void run(const std::string& program, DatasetKind dataset) const {
    const auto kind = resolve(dataset, f.c);
    CompareConfig config;
    // Checked before anything loads: a bad name costs nothing.
    config.methods = f.methods.empty() ? all_methods() : methods_flag(f.methods, "");
    apply_threads(f.c);
    const EvalConfig eval = eval_config(kind, f.c, f.eval);
    config.seconds = seconds;
    config.prefix = f.prefix;
    config.resume = f.resume;
    // What the rows depend on besides the method: a resumed run must match it.
    std::ostringstream settings;
    settings << "program=" << program << " dataset=" << static_cast<int>(kind)
             << " data=" << f.c.data << " preset=" << f.c.preset << " seconds=" << seconds
             << " train-images=" << f.train_limit << " train-batch-size=" << f.batch
             << " seed=" << f.c.seed;
    write_eval_settings(settings, eval);
    settings << " explainer=" << explainer_name(eval.explainer) << " protocol=" << f.protocol();
    config.settings = settings.str();
    config.banner = protocol_line(eval);
    f.run_sweep(kind, eval, [&](const auto& train_config, const Dataset& data,
                                const Dataset& test, torch::Device device) {
      const auto rows = compare(train_config, data, test, eval, config, device);
      std::cout << "\nall " << rows.size() << " methods:";
      report_comparison(rows, config.seconds, config.prefix);
    });
  }
};

/// `frontier`: each method trained once, snapshotted at each budget, every snapshot evaluated.
struct FrontierCommand {
  CLI::App* cmd = nullptr;
  SweepFlags f;
  std::string budgets;

  void define(CLI::App& app, bool mnist) {
    f.prefix = "frontier";
    cmd = app.add_subcommand(
        "frontier",
        "robustness against training time: train each method once, snapshot it at each budget, "
        "then print NA, AA, IN, CO of every snapshot and plot them against training seconds");
    add_common(cmd, f.c, mnist);
    cmd->add_option("--methods", f.methods,
                    "comma-separated training methods (default: natural, madry, ig-norm, "
                    "ig-sum-norm, ig-sum-norm-fast)");
    cmd->add_option("--budgets", budgets,
                    "comma-separated training seconds, increasing, at which each method is "
                    "snapshotted and evaluated (default: 30,60,120,240,480,960)");
    f.add_training(cmd);
    f.add_results(cmd,
                  "write <prefix>.csv, .json, .png, the state <prefix>.state, the checkpoints "
                  "<prefix>.<method>.pt and the snapshots <prefix>.<method>.<budget>s.pt "
                  "(default: frontier)",
                  "keep the snapshots <prefix>.state has evaluated, continue training from the "
                  "checkpoints");
  }

  void run(const std::string& program, DatasetKind dataset) const {
    const auto kind = resolve(dataset, f.c);
    FrontierConfig config;
    // Checked before anything loads: a bad name or budget costs nothing.
    config.methods = methods_flag(f.methods, "natural,madry,ig-norm,ig-sum-norm,ig-sum-norm-fast");
    if (!budgets.empty()) config.budgets = parse_budgets(budgets);
    apply_threads(f.c);
    const EvalConfig eval = eval_config(kind, f.c, f.eval);
    config.prefix = f.prefix;
    config.resume = f.resume;
    std::ostringstream settings;
    settings << "program=" << program << " dataset=" << static_cast<int>(kind)
             << " data=" << f.c.data << " preset=" << f.c.preset << " budgets=";
    for (const double b : config.budgets) settings << b << ";";
    settings << " train-images=" << f.train_limit << " train-batch-size=" << f.batch
             << " seed=" << f.c.seed;
    write_eval_settings(settings, eval);
    settings << " strength-images=" << eval.strength_images
             << " surrogate-beta=" << eval.surrogate_beta
             << " explainer=" << explainer_name(eval.explainer) << " protocol=" << f.protocol();
    config.settings = settings.str();
    config.title = table_entry(kMnistDatasets, kind == DatasetKind::mnist
                                                   ? DatasetKind::mnist
                                                   : DatasetKind::fashion_mnist)
                       .title;
    if (kind == DatasetKind::gtsrb) config.title = "GTSRB";
    if (kind == DatasetKind::flower) config.title = "Flower-17";
    config.title += ", " + f.c.preset + " preset: robustness against training time";
    config.banner = protocol_line(eval);
    f.run_sweep(kind, eval, [&](const auto& train_config, const Dataset& data,
                                const Dataset& test, torch::Device device) {
      const auto rows = frontier(train_config, data, test, eval, config, device);
      std::cout << "\nall " << rows.size() << " snapshots:";
      report_frontier(rows, config.prefix, config.title);
    });
  }
};

/// `explain`: heatmap panels of one checkpoint, optionally several methods and the sanity test.
struct ExplainCommand {
  CLI::App* cmd = nullptr;
  Common c;
  std::string model_path, out_dir = "explain", explainer = explainer_name(Explainer::ig),
                          compare_list;
  int64_t count = 6;
  bool sanity = false;

  void define(CLI::App& app, bool mnist) {
    cmd = app.add_subcommand("explain",
                             "write PNG panels: image | map | attacked image | attacked map");
    add_common(cmd, c, mnist);
    cmd->add_option("--model", model_path, "checkpoint")->required()->check(CLI::ExistingFile);
    cmd->add_option("--out", out_dir, "output directory");
    cmd->add_option("--count", count, "images per panel")->check(CLI::PositiveNumber);
    add_explainer(cmd, explainer);
    cmd->add_option("--compare-explainers", compare_list,
                    "also write <out>/<name>-explainers.png: one row of maps per method "
                    "on the same images (comma-separated names, or 'all')");
    cmd->add_flag("--sanity", sanity,
                  "also print the model-parameter randomization test (Adebayo et al. 2018)");
  }

  /// The methods of `--compare-explainers`, checked before anything loads.
  std::vector<Explainer> compared() const {
    std::vector<Explainer> out;
    if (compare_list == "all") {
      for (const auto& e : explainer_names()) out.push_back(parse_explainer(e));
      return out;
    }
    size_t begin = 0;
    while (!compare_list.empty()) {
      const size_t comma = compare_list.find(',', begin);
      const std::string item = compare_list.substr(
          begin, comma == std::string::npos ? std::string::npos : comma - begin);
      try {
        out.push_back(parse_explainer(item));
      } catch (const std::exception& e) {
        throw std::invalid_argument(std::string("--compare-explainers: ") + e.what());
      }
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
    return out;
  }

  void run(DatasetKind dataset) const {
    const auto kind = resolve(dataset, c);
    apply_threads(c);
    TrainConfig train;
    EvalConfig eval;
    apply_preset(kind, c.preset, Method::natural, train, eval);
    eval.seed = c.seed;
    eval.explainer = parse_explainer(explainer);
    std::vector<Explainer> methods = compared();
    Net net = load_model(model_path);  // before the data: a bad file costs nothing
    const Dataset test = load(kind, c, Split::test);
    make_explainer(explainer_config(eval), net->config());  // refused before anything is printed
    print_attack_note(eval);
    const std::string name = std::filesystem::path(model_path).stem().string();
    const torch::Device device = pick_device(c.device);
    explain(net, test, eval, device, out_dir, name, count);
    if (!methods.empty()) {
      // Guided backprop is refused on leaky networks: leave it out of 'all' there.
      if (compare_list == "all" && net->config().leaky_slope != 0.0)
        methods.erase(std::remove(methods.begin(), methods.end(), Explainer::guided_backprop),
                      methods.end());
      compare_explainers(net, test, eval, device, out_dir, name, count, methods);
    }
    if (sanity) sanity_check(net, test, eval, device, 16);
  }
};

}  // namespace

int run_cli(const std::string& program, DatasetKind dataset, int argc, char** argv) {
  keep_large_buffers_on_heap();
  const bool mnist = dataset == DatasetKind::fashion_mnist;
  CLI::App app{program +
               ": reproduce 'Robust Attribution Regularization' (Chen et al., NeurIPS 2019)"};
  app.require_subcommand(1);
  TrainCommand train;
  EvalCommand eval;
  CompareCommand compare;
  FrontierCommand frontier;
  ExplainCommand explain;
  train.define(app, mnist);
  eval.define(app, mnist);
  compare.define(app, mnist);
  frontier.define(app, mnist);
  explain.define(app, mnist);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (train.cmd->parsed()) train.run(dataset);
    if (eval.cmd->parsed()) eval.run(dataset);
    if (compare.cmd->parsed()) compare.run(program, dataset);
    if (frontier.cmd->parsed()) frontier.run(program, dataset);
    if (explain.cmd->parsed()) explain.run(dataset);
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
