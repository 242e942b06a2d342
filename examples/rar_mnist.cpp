// rar_mnist: train, evaluate and explain the paper's models on MNIST / Fashion-MNIST.
// All the work lives in the shared support library (examples/support/).
#include "support/cli.hpp"

int main(int argc, char** argv) {
  return rar::examples::run_cli("rar_mnist", rar::examples::DatasetKind::fashion_mnist, argc, argv);
}
