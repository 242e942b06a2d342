// rar_gtsrb: train, evaluate and explain the paper's models on GTSRB.
// All the work lives in the shared support library (examples/support/).
#include "support/cli.hpp"

int main(int argc, char** argv) {
  return rar::examples::run_cli("rar_gtsrb", rar::examples::DatasetKind::gtsrb, argc, argv);
}
