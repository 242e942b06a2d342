#pragma once
/// @file
/// DatasetKind on its own, so that the programs' main() files need neither LibTorch nor rar.

namespace rar {
namespace examples {

/// Which data set an experiment runs on (decides the presets and the loader).
enum class DatasetKind { mnist, fashion_mnist, gtsrb, flower };

}  // namespace examples
}  // namespace rar
