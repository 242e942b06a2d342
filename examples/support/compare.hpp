#pragma once
/// @file
/// The `compare` subcommand's work: every selected training method gets the same data and the
/// same wall-clock budget, then the same evaluation (`evaluate`: NA, AA, IN, CO). The finished
/// rows are kept in a state file so that an interrupted comparison resumes; the results go to
/// `<prefix>.csv`, `<prefix>.json` and a plot `<prefix>.png`.

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "experiment.hpp"

namespace rar {
namespace examples {

/// What `compare` runs.
struct CompareConfig {
  std::vector<Method> methods;  ///< in the order they are trained and reported
  double seconds = 120.0;       ///< training budget of each method (wall clock)
  /// Files: `<prefix>.csv`, `.json`, `.png`, the state `<prefix>.state` and one checkpoint
  /// `<prefix>.<method>.pt` per method.
  std::string prefix = "compare";
  bool resume = false;  ///< keep the finished rows of `<prefix>.state`, resume checkpoints
  /// The settings the rows depend on, as one line (data set, preset, budget, evaluation ...):
  /// a resumed comparison refuses a state file written with other settings.
  std::string settings;
  /// A line printed once the state is accepted (the evaluation protocol); "" prints nothing.
  std::string banner;
  /// Seconds between the checkpoints written while a method trains.
  double checkpoint_seconds = 10.0;
};

/// One method's row of the comparison.
struct CompareRow {
  Method method = Method::natural;
  int64_t steps = 0;           ///< training steps done within the budget
  double train_seconds = 0.0;  ///< wall-clock seconds they took (the first step past the budget ends it)
  double cpu_seconds = 0.0;    ///< CPU seconds of the process (all threads) while training
  EvalResult eval;             ///< NA, AA, IN, CO under the shared protocol
  double seconds_per_step() const;
};

/// Trains each method of `config` for `config.seconds` on `data` (its settings from
/// `train_config(method)`: the preset's, with the budget and the checkpoint cadence set here),
/// evaluates it on `test` with `eval`, and writes the state and the results after each method.
/// With `config.resume`, methods whose rows are in the state file are skipped and a method
/// whose checkpoint exists continues from it (its budget counts the time already trained).
/// Returns the rows of `config.methods`, in order.
std::vector<CompareRow> compare(const std::function<TrainConfig(Method)>& train_config,
                                const Dataset& data, const Dataset& test, const EvalConfig& eval,
                                const CompareConfig& config, torch::Device device);

/// Prints the rows as a table (method, steps, steps/s, NA, AA, IN, CO) and writes
/// `<prefix>.csv` (one row per method, CSV-quoted), `<prefix>.json` and `<prefix>.png` (IN and
/// AA against NA per method) when `prefix` is not empty.
void report_comparison(const std::vector<CompareRow>& rows, double budget_seconds,
                       const std::string& prefix);

/// Writes `text` to `path` atomically: to `<path>.tmp`, then renamed over `path`; throws a
/// one-line error naming `path` when either fails.
void write_atomically(const std::string& path, const std::string& text);

/// Opens the state file `path` of a `noun` run ("comparison", "frontier"), checks its first line
/// against `header` and its settings line against `settings`, and returns the stream at the first
/// row; throws a one-line error naming `path` otherwise (`run` names the writer in the message:
/// "a comparison", "a frontier run").
std::ifstream open_state_file(const std::string& path, const std::string& header,
                              const std::string& noun, const std::string& run,
                              const std::string& settings);

/// The state file of a comparison: its settings line and its finished rows. Written
/// atomically (temporary file, then rename) after each method.
void write_compare_state(const std::string& path, const std::string& settings,
                         const std::vector<CompareRow>& rows);
/// Reads a state file; throws a one-line error naming the path when it is malformed, or when
/// its settings differ from `settings`.
std::vector<CompareRow> read_compare_state(const std::string& path, const std::string& settings);

}  // namespace examples
}  // namespace rar
