#pragma once
/// @file
/// The process settings shared by the example programs and rar_bench: the glibc allocator's
/// policy and OpenBLAS's threads.

#include <cstdlib>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
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

/// Runs OpenBLAS on one thread when LibTorch calls it, unless the user chose otherwise
/// (`OPENBLAS_NUM_THREADS` or `GOTO_NUM_THREADS` set). Debian's LibTorch runs its own OpenMP
/// threads and calls OpenBLAS from them; OpenBLAS's pthread build starts as many threads again,
/// which spin beside OpenMP's on the same cores. On a 2-core CPU that oversubscription cost the
/// examples' training 15-25 % of its steps and a third of its CPU time in the kernel
/// (docs/performance.md, "Threads"). Looks the setter up at run time, so builds against
/// LibTorch with MKL or another BLAS are unaffected. Returns whether it applied the setting.
inline bool single_threaded_openblas() {
#if defined(__unix__) || defined(__APPLE__)
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr || std::getenv("GOTO_NUM_THREADS") != nullptr)
    return false;
  using Setter = void (*)(int);
  void* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (symbol == nullptr) return false;
  reinterpret_cast<Setter>(symbol)(1);
  return true;
#else
  return false;
#endif
}

}  // namespace examples
}  // namespace rar
