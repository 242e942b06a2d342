// rar_flower: train, evaluate and explain the paper's models on Flower-17.
// All the work lives in the shared support library (examples/support/).
#include "support/cli.hpp"

int main(int argc, char** argv) {
  return rar::examples::run_cli("rar_flower", rar::examples::DatasetKind::flower, argc, argv);
}
