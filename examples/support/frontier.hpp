#pragma once
/// @file
/// The `frontier` subcommand's work: robustness against training time. Each selected method is
/// trained once, up to the largest budget, and the model is saved the first time its training
/// time passes each budget (a geometric series, 30 … 960 s by default). Every snapshot is then
/// evaluated with `evaluate` (the same test images for all, the surrogate's β chosen per
/// snapshot, the strength check, ± standard errors). Evaluation time never counts as training
/// time. The rows go to `<prefix>.csv`, `<prefix>.json` and `<prefix>.png` (IN, AA, NA and CO
/// against training seconds on a log axis, one line per method); a state file lets a killed run
/// resume where it stopped.

#include <functional>
#include <string>
#include <vector>

#include "experiment.hpp"

namespace rar {
namespace examples {

/// What `frontier` runs.
struct FrontierConfig {
  std::vector<Method> methods;  ///< in the order they are trained and plotted
  /// Training-time budgets in seconds, increasing; each method trains to the last.
  std::vector<double> budgets = {30, 60, 120, 240, 480, 960};
  /// Files: `<prefix>.csv`, `.json`, `.png`, the state `<prefix>.state`, one checkpoint
  /// `<prefix>.<method>.pt` per method and one snapshot `<prefix>.<method>.<budget>s.pt` per
  /// method and budget.
  std::string prefix = "frontier";
  bool resume = false;  ///< keep the evaluated rows of `<prefix>.state`, resume training
  /// The settings the rows depend on, as one line: a resumed run refuses a state file written
  /// with other settings.
  std::string settings;
  /// A line printed once the state is accepted (the evaluation protocol); "" prints nothing.
  std::string banner;
  std::string title;  ///< the plot's title (data set, preset), e.g. "Fashion-MNIST, quick preset"
  double checkpoint_seconds = 10.0;  ///< seconds between checkpoints while a method trains
};

/// One point of the frontier: a method's model after `budget` seconds of training.
struct FrontierRow {
  Method method = Method::natural;
  double budget = 0.0;         ///< the budget the snapshot was taken at
  int64_t steps = 0;           ///< training steps done when it was taken
  double train_seconds = 0.0;  ///< training (wall-clock) seconds then: the first step past the budget
  double cpu_seconds = 0.0;    ///< CPU seconds of the process while training, then
  EvalResult eval;             ///< NA, AA, IN ± SE, CO ± SE, the surrogate's β, the strength check
};

/// "30,60,120" -> {30, 60, 120}; throws a one-line error for a bad number, a budget <= 0 or a
/// list that does not increase.
std::vector<double> parse_budgets(const std::string& text);

/// Trains each method of `config` (settings from `train_config(method)`) to the last budget,
/// saving a snapshot at each budget, then evaluates the snapshots on `test` with `eval` and
/// writes the state and the results after each evaluation. With `config.resume`, evaluated
/// snapshots are skipped, existing snapshots are not trained again, and a method whose
/// checkpoint exists continues from it. Returns every row, by method then budget.
std::vector<FrontierRow> frontier(const std::function<TrainConfig(Method)>& train_config,
                                  const Dataset& data, const Dataset& test, const EvalConfig& eval,
                                  const FrontierConfig& config, torch::Device device);

/// Prints the rows as a table and writes `<prefix>.csv` (one row per snapshot: method, budget,
/// steps, training and CPU seconds, NA, AA, IN, IN_se, CO, CO_se, surrogate β, ...),
/// `<prefix>.json` and `<prefix>.png` when `prefix` is not empty.
void report_frontier(const std::vector<FrontierRow>& rows, const std::string& prefix,
                     const std::string& title);

/// The state file of a frontier run: its settings line and its evaluated rows, written
/// atomically after each evaluation.
void write_frontier_state(const std::string& path, const std::string& settings,
                          const std::vector<FrontierRow>& rows);
/// Reads a state file; throws a one-line error naming the path when it is malformed or was
/// written with other settings.
std::vector<FrontierRow> read_frontier_state(const std::string& path, const std::string& settings);

}  // namespace examples
}  // namespace rar
