#include "support/experiment.hpp"
#include "support/names.hpp"

// The presets ("paper", "quick") per data set and the evaluation's explainer settings.

namespace rar {
namespace examples {
namespace {

enum class Preset { paper, quick };
/// The presets (`--preset`).
constexpr Named<Preset> kPresets[] = {{Preset::paper, "paper", "paper"},
                                      {Preset::quick, "quick", "quick"}};

}  // namespace

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

/// The step at which the quick preset's fast recipe drops Adam's rate from 1e-3 to 1e-4.
constexpr int64_t kFastDecayStep = 2000;

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
      // The official attack differentiates the surrogate's IG over the same 100 points (its
      // counterfactual batch), and keeps the iterate with the lowest Kendall's tau.
      eval.surrogate_ig_steps = 100;
      eval.attack_measure = rar::AttackMeasure::kendall_tau;
      eval.accuracy_images = 0;
      eval.attack_images = 200;
      if (quick) {
        // The notes' reduced protocol: a small CNN, IG-NORM with m = 10 and 5 inner steps.
        train.net.conv1 = 16;
        train.net.conv2 = 32;
        train.net.fc = 128;
        train.ig_steps = 10;
        train.attack_steps = 5;
        // Five inner steps must be able to cross the ball: ε/10 each (0.01 on Fashion-MNIST,
        // 0.03 on MNIST, the notes' reduced protocol), not the paper's 0.01 for 40 steps.
        train.attack_step_size = train.epsilon / 10.0;
        // The fast recipe clears the demo's margins in 25 s (docs/methods.md): a minute is its
        // quick budget, against four for the paper's settings.
        train.max_seconds = method == Method::natural            ? 30
                            : method == Method::ig_sum_norm_fast ? 60
                                                                 : 240;
        // Past ~3,000 steps at Adam 1e-3 the recipe's maps grow fragile again (IN 59.7 % at
        // 2,900 steps, 40.3 % at 5,600) while NA and AA still rise; so does Madry's. The same
        // 2,700 further steps at 1e-4 kept IN at 60.9 % and raised NA and AA (docs/methods.md,
        // "The collapse is the learning rate's"). The recipe decays at 2,000 steps.
        if (method == Method::ig_sum_norm_fast) train.lr_schedule = {{kFastDecayStep, 1e-4}};
        eval.pgd_steps = 20;
        eval.accuracy_images = 1000;
        eval.attack_images = 100;
        // Maps of 20 right-Riemann points give the same IN/CO as 50 or 100 on these models
        // (measured), at a fraction of the cost of checking every attack iterate.
        eval.ig_steps = 20;
        // The attack's surrogate maps need a direction, not a precise map: 5 points attack as
        // hard as 10 (IN 57.8 % vs 57.6 % on an IG-NORM model, 41.3 % vs 43.7 % on a natural
        // one, 30 images each) in 70 % of the time (docs/reproduce.md, "The demo").
        eval.surrogate_ig_steps = 5;
        eval.attack_measure = rar::AttackMeasure::topk_intersection;
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
      train.art_surrogate_beta = 10.0;
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
      eval.surrogate_ig_steps = 100;
      eval.attack_measure = rar::AttackMeasure::kendall_tau;
      eval.accuracy_images = 0;
      eval.attack_images = 200;
      eval.batch_size = flower ? 8 : 50;
      if (quick) {
        train.net.units_per_stage = 1;
        train.ig_steps = 10;
        train.inner_stride = 5;
        train.attack_steps = 3;
        train.max_seconds = method == Method::natural            ? 120
                            : method == Method::ig_sum_norm_fast ? 240
                                                                 : 480;
        eval.accuracy_images = 500;
        eval.attack_images = 50;
        eval.ig_steps = 30;
        eval.surrogate_ig_steps = 10;
        eval.attack_measure = rar::AttackMeasure::topk_intersection;
        eval.attack_iterations = 30;
      }
      break;
    }
  }
}

}  // namespace examples
}  // namespace rar
