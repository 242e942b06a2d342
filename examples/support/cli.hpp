#pragma once
/// @file
/// The command line shared by rar_mnist, rar_gtsrb and rar_flower (CLI11): subcommands
/// `train`, `eval`, `compare` and `explain`.

// Kept free of LibTorch: the three programs include only this header and compile in a second.
#include "dataset_kind.hpp"

#include <string>

namespace rar {
namespace examples {

/// Runs the program `program` for `dataset` (rar_mnist also accepts `--dataset mnist`).
/// Returns the process exit code; errors print one line to stderr and return non-zero.
int run_cli(const std::string& program, DatasetKind dataset, int argc, char** argv);

}  // namespace examples
}  // namespace rar
