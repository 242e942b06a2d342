#pragma once
/// @file
/// The paper's experiment, shared by rar_mnist, rar_gtsrb and rar_flower. Declared here, defined
/// one job per file: the method table and objectives (methods.cpp), the presets (presets.cpp),
/// checkpoints (checkpoint.cpp), the training loop (training.cpp), the evaluation (NA, AA, IN,
/// CO; evaluation.cpp), the results files (results.cpp) and the explain panels (panels.cpp).

#include <cmath>
#include <functional>
#include <rar/rar.hpp>
#include <string>
#include <vector>

#include "datasets.hpp"
#include "dataset_kind.hpp"
#include "explainers.hpp"
#include "models.hpp"

namespace rar {
namespace examples {

/// Training objective: the paper's table, then the successor methods (docs/methods.md).
enum class Method {
  natural,        ///< cross-entropy
  madry,          ///< cross-entropy at the PGD point (Madry et al.)
  ig_norm,        ///< cross-entropy + λ·max ‖IG‖₁ (Chen et al.)
  ig_sum_norm,    ///< max [ℓ + β‖IG‖₁] (Chen et al.)
  ig_sum_norm_fast,  ///< IG-SUM-NORM with the cheaper-training recipe (`IGSumNormOptions::fast`)
  input_grad,     ///< cross-entropy + λ·ε‖∇ℓ‖₁, IG's first-order term
  ssr,            ///< smoothed surface regularization (Wang et al. 2020)
  art,            ///< attributional robustness training (Singh et al. 2020)
  alignment,      ///< attribution alignment, IG cosine at the PGD point (Wang and Kong 2022)
  distributional  ///< the paper's distributional (Wasserstein, Lagrangian) objective
};

/// Everything a training run needs (the presets fill it in; flags override).
struct TrainConfig {
  Method method = Method::natural;
  NetConfig net;
  double epsilon = 0.3;       ///< radius of the L∞ ball, in [0, 1] pixel units
  int64_t ig_steps = 50;      ///< IG points m of the RAR terms
  int64_t inner_stride = 5;   ///< inner maximization uses every stride-th point
  int64_t attack_steps = 40;  ///< inner (and Madry PGD) ascent steps
  double attack_step_size = 0.01;
  /// The RAR terms' cheaper-training levers (docs/methods.md, "Cheaper robust training"):
  /// the rule of the m IG points, what the inner ascent climbs, and the penalty on every k-th
  /// step only (weighted k).
  rar::Quadrature quadrature = rar::Quadrature::riemann_right;
  rar::InnerObjective inner_objective = rar::InnerObjective::full;
  int64_t penalty_every = 1;
  double lambda = 1.0;  ///< IG-NORM / input-gradient weight
  double beta = 0.1;    ///< IG-SUM-NORM and distributional weight of ‖IG‖₁
  double ssr_alpha = 0.3;                      ///< SSR: weight α of the penalty against CE
  double ssr_scale = 0.3 / (255.0 * 255.0);    ///< SSR: scale s, the authors' 0.3 on [0, 1]
  double art_lambda = 0.5;                     ///< ART: weight of the triplet term
  int64_t art_attack_steps = 3;                ///< ART: sign steps of its attack
  double art_step_fraction = 5.0 / 8.0;        ///< ART: step = fraction · ε (authors: 5/255 of 8/255)
  double art_surrogate_beta = 10.0;            ///< ART: softplus β of the triplet's gradients
  double alignment_lambda = 1.0;               ///< attribution alignment: weight λ of 1 − cos
  double distributional_gamma = 1.0;           ///< distributional: price γ of ‖x′ − x‖₂²
  double distributional_step_size = 0.1;       ///< distributional: gradient-ascent step α
  int64_t batch_size = 50;
  std::string optimizer = "adam";  ///< adam | momentum (SGD, momentum 0.9)
  double learning_rate = 1e-3;
  double weight_decay = 0.0;
  /// Piecewise-constant learning rate: (first step, rate) pairs; empty: `learning_rate` always.
  std::vector<std::pair<int64_t, double>> lr_schedule;
  int64_t max_steps = 100000;  ///< stop after this many steps ...
  double max_seconds = 0.0;    ///< ... or after this many seconds (0: no limit)
  bool augment = false;        ///< Flower's random crop and flip
  int64_t checkpoint_every = 200;  ///< checkpoint every this many steps (0: never) ...
  double checkpoint_seconds = 0.0;  ///< ... and when this many seconds passed since the last (0: off)
  int64_t log_every = 20;
  uint64_t seed = 0;
};

/// Evaluation settings (NA/AA with PGD, IN/CO with the top-k attribution attack).
struct EvalConfig {
  int64_t accuracy_images = 1000;  ///< test images for NA and AA (0: all)
  double epsilon = 0.3;
  int64_t pgd_steps = 20;
  double pgd_step_size = 0.01;
  int64_t attack_images = 100;  ///< correctly classified images attacked for IN/CO
  int64_t attack_k = 200;       ///< k of the top-k attack
  int64_t eval_k = 100;         ///< k of the reported top-k intersection
  int64_t attack_iterations = 100;
  int64_t measure_every = 1;       ///< measure the real map every this many attack iterations
  double attack_step_size = 0.01;
  Explainer explainer = Explainer::ig;  ///< the method whose maps IN/CO measure
  int64_t ig_steps = 100;           ///< IG points of the measured maps
  int64_t surrogate_ig_steps = 10;  ///< IG points of the surrogate's maps (the attack gradient)
  /// How the attack picks its iterate: lowest top-k intersection at the attack's k, or lowest
  /// Kendall's tau (the official configs' `attribution_attack_measure: kendall`).
  rar::AttackMeasure attack_measure = rar::AttackMeasure::topk_intersection;
  /// Softplus β of the surrogate; 0 chooses it per model by `rar::choose_surrogate_beta`
  /// (smallest β of 1, 3, 10, 30, 100, 300 predicting the model's class on 99 % of the attacked
  /// images and sharing 90 % of the top-`eval_k` features of the model's maps), so that every
  /// model is attacked equally hard (`--surrogate-beta auto`, the default: a fixed β attacks a
  /// natural model through a surrogate that often disagrees with it).
  double surrogate_beta = 0.0;
  int64_t smoothgrad_samples = 25;  ///< noisy copies per SmoothGrad map
  double smoothgrad_stddev = 0.15;  ///< SmoothGrad noise, in pixel units
  int64_t batch_size = 100;
  uint64_t seed = 0;
  /// Also measure the maps' quality (infidelity, deletion/insertion AUC, sparseness,
  /// complexity) and their robustness beyond IN/CO (LENS, the certified radius) on the attacked
  /// images (`eval --metrics`).
  bool metrics = false;
  /// Check the attack on the first this many attacked images against the random-sign attack
  /// at the same budget (`rar::attack_strength`; `eval --strength-images`, 0: off).
  int64_t strength_images = 20;
};

/// One row of the paper's table.
struct EvalResult {
  std::string name;
  double natural_accuracy = 0, adversarial_accuracy = 0;
  double topk_intersection = 0, kendall = 0;
  /// Standard errors of the mean IN and CO over the attacked images (NaN below 2 images).
  double topk_intersection_se = std::nan(""), kendall_se = std::nan("");
  int64_t accuracy_images = 0, attacked_images = 0;
  double prediction_kept = 0;  ///< fraction of attacked images whose label the attack kept
  /// Share of the attacked images on which the smooth surrogate predicts the model's class: a
  /// low value means a weak attack (docs/guide.md, "Surrogate fidelity").
  double surrogate_agreement = std::nan("");
  double surrogate_beta = std::nan("");  ///< the softplus β the attack used
  /// Quality of the clean maps on the attacked images (`EvalConfig::metrics`; NaN otherwise):
  /// means of rar::infidelity (normalized), deletion and insertion AUC of the softmax
  /// probability (16 steps of pixels), rar::sparseness (Gini) and rar::complexity (entropy).
  double infidelity = std::nan(""), deletion_auc = std::nan(""), insertion_auc = std::nan("");
  double sparseness = std::nan(""), complexity = std::nan("");
  /// Robustness beyond IN/CO (`EvalConfig::metrics`; NaN otherwise): LENS recall and precision
  /// of the attacked maps (rar::lens, k = the eval k, 3 × 3 window), and the mean certified
  /// radius (rar::certified_topk: sparsified SmoothGrad of the input gradient, top-k at the
  /// eval k, σ = 0.1, 200 samples, half of the top-k kept, α = 0.001).
  double lens_recall = std::nan(""), lens_precision = std::nan("");
  double certified_radius = std::nan("");
  /// Quantus' faithfulness correlation (20 random subsets of 1/8 of the features set to black;
  /// higher is more faithful), local Lipschitz estimate (10 Gaussian perturbations of σ 0.1;
  /// lower is more stable) and relative input stability (10 uniform perturbations in
  /// [0.02, 0.2]; lower is more stable), of the measured maps (`EvalConfig::metrics`).
  double faithfulness_correlation = std::nan(""), local_lipschitz = std::nan("");
  double relative_input_stability = std::nan("");
  /// The attack against the random-sign baseline on the first `strength_images` attacked
  /// images (`rar::attack_strength`; samples = 0 and NaN figures when off).
  rar::AttackStrength strength;
};

/// The presets: "paper" (the paper's settings) and "quick" (minutes on a 2-core CPU).
void apply_preset(DatasetKind dataset, const std::string& preset, Method method, TrainConfig& train,
                  EvalConfig& eval);

Method parse_method(const std::string& name);
std::string method_name(Method method);
std::string method_title(Method method);  ///< "NATURAL", "IG-NORM", ... as in the table
std::vector<std::string> method_names();  ///< every name, for the CLI
std::vector<Method> all_methods();        ///< every method, in the table's order
/// "natural,ssr" -> {natural, ssr}; throws a one-line error naming a bad or repeated name.
std::vector<Method> parse_method_list(const std::string& names);

/// The presets' names, in order ("paper", "quick"), for the CLI.
std::vector<std::string> preset_names();

/// The explainer settings of an evaluation (`--explainer`, IG points, SmoothGrad noise, seed).
ExplainerConfig explainer_config(const EvalConfig& config);

/// The training objective of `config.method` as a function of (net, x, y); `step` seeds the
/// random starts so that a resumed run draws what an uninterrupted one would.
std::function<torch::Tensor(Net&, const torch::Tensor&, const torch::Tensor&)> make_objective(
    const TrainConfig& config, int64_t step);

/// What a training run did, counting the runs it resumed.
struct TrainProgress {
  int64_t steps = 0;         ///< steps done in total
  double seconds = 0.0;      ///< wall-clock seconds of training in total
  double cpu_seconds = 0.0;  ///< CPU seconds of the process (all threads) while training
};

/// Trains `net` on `data`, printing progress (step, loss, accuracy, images/s, ETA) and writing
/// a checkpoint (model, optimizer, step, training seconds) every `checkpoint_every` steps (or
/// `checkpoint_seconds`) and at the end, atomically (temporary file, then rename). With
/// `resume` and an existing checkpoint, training continues where it stopped; batches and random
/// starts depend only on (seed, step), so the resumed run matches an uninterrupted one. The
/// time budget `max_seconds` counts the training time recorded in the checkpoint too; the loop
/// stops at the first step that ends past it. `after_step`, when given, is called after every
/// step with the progress so far, before that step's checkpoint is written (so a checkpoint
/// never runs ahead of what the callback saw; `frontier` saves its snapshots there).
TrainProgress train(Net& net, const Dataset& data, const TrainConfig& config, torch::Device device,
                    const std::string& checkpoint, bool resume,
                    const std::function<void(Net&, const TrainProgress&)>& after_step = {});

/// Saves `net` (and optimizer state, step, training wall-clock and CPU seconds when `time` is
/// given) to `path` atomically.
void save_checkpoint(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                     int64_t step, const TrainProgress* time = nullptr);
/// Loads a checkpoint into `net` (and `optimizer` if given); returns its step and stores its
/// step and training seconds (0 if it has none) in `*time` if given. Throws a one-line error
/// naming the path when it is missing or unreadable.
int64_t load_checkpoint(const std::string& path, Net& net, torch::optim::Optimizer* optimizer,
                        TrainProgress* time = nullptr);

/// Builds the network recorded in a checkpoint and loads its weights (eval mode, CPU, in the
/// dtype the parameters were saved in).
Net load_model(const std::string& path);

/// NA, AA, IN and CO of `net` on `test`, with progress lines. IN and CO compare the maps of
/// `config.explainer` before and after the top-k attack, whose gradient goes through the smooth
/// surrogate (`rar::smooth_surrogate(net, config.surrogate_beta)`; see `make_explainer`).
EvalResult evaluate(Net& net, const Dataset& test, const EvalConfig& config, torch::Device device,
                    const std::string& name);

/// The softplus β of the attack's surrogate for `net`: `config.surrogate_beta` when it is set
/// (> 0), else the choice of `rar::choose_surrogate_beta` (default thresholds, the maps of
/// `method`, the caller's `make_explainer(explainer_config(config), …)`, compared at
/// k = `config.eval_k`) on the test images `picked`, printed with its class and map agreement
/// under `name`. `evaluate` and `explain` choose on the same attacked images, so that a panel
/// shows the attack of the table.
double evaluation_surrogate_beta(Net& net, const NetExplainer& method, const Dataset& test,
                                 const torch::Tensor& picked, const EvalConfig& config,
                                 torch::Device device, const std::string& name);

/// The top-k attribution attack of an evaluation (kind, k, ε, step, iterations, seed).
rar::AttributionAttackOptions attack_options(const EvalConfig& config);

/// Indices into `test` of the first `count` test images that `net` classifies correctly,
/// predicted in batches of `batch` on `device`.
torch::Tensor correctly_classified(Net& net, const Dataset& test, int64_t count,
                                   torch::Device device, int64_t batch);

/// Prints results as the paper's table; also writes `<prefix>.csv` and `<prefix>.json` when
/// `prefix` is not empty.
void report(const std::vector<EvalResult>& results, const std::string& prefix);

/// `text` as one CSV field: in double quotes, inner quotes doubled (RFC 4180).
std::string csv_quote(const std::string& text);
/// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
std::string json_quote(const std::string& text);
/// A number for CSV/JSON: shortest round-trip form; non-finite values as `null` (JSON) or
/// empty (CSV).
std::string json_number(double value);
std::string csv_number(double value);
/// A fraction as a percentage in its shortest form: 0.99 as "99%".
std::string percent(double fraction);

/// Writes panels "image | map | attacked image | attacked map" (maps of `config.explainer`) for
/// `count` correctly classified test images to `<dir>/<name>.png`.
void explain(Net& net, const Dataset& test, const EvalConfig& config, torch::Device device,
             const std::string& dir, const std::string& name, int64_t count);

/// Writes `<dir>/<name>-explainers.png`: the first `count` correctly classified test images in
/// the top row, then one row of maps per explainer (titled on the left), so that methods can be
/// compared on the same images; prints each method's time.
void compare_explainers(Net& net, const Dataset& test, const EvalConfig& config,
                        torch::Device device, const std::string& dir, const std::string& name,
                        int64_t count, const std::vector<Explainer>& explainers);

/// Model-parameter randomization sanity check (Adebayo et al. 2018) on `count` correctly
/// classified test images: re-initializes the layers from the top down and prints how similar
/// (Spearman, top-k) the maps of `config.explainer` stay to the trained model's.
void sanity_check(Net& net, const Dataset& test, const EvalConfig& config, torch::Device device,
                  int64_t count);

}  // namespace examples
}  // namespace rar
