#pragma once
/// @file
/// The glibc allocator setting shared by the example programs and rar_bench.

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace rar {
namespace examples {

/// Keeps large tensor buffers on glibc's heap. Attacks, RAR steps and DeepLIFT allocate and
/// free tensors of tens of MB every iteration; by default glibc maps each allocation above its
/// mmap threshold afresh and unmaps it on free, so every iteration faults those pages in again
/// (a third of an example run's time, and most of DeepLIFT's excess in the benchmarks).
/// Returns whether the setting was applied (only with glibc).
///
/// Example: call it first thing in `main`: `rar::examples::keep_large_buffers_on_heap();`
inline bool keep_large_buffers_on_heap() {
#ifdef __GLIBC__
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
#else
  return false;
#endif
}

}  // namespace examples
}  // namespace rar
