#pragma once
/// @file
/// The randomness contract: every random draw in rar comes from a CPU generator
/// `rar::seeded_generator(seed, index)`, one independent stream per (seed, call index), drawn
/// on the CPU in float64 and then cast and moved, so that a seed gives the same numbers on every
/// device.
///
/// - A function called once with a `seed` option (`rar::pgd_attack`, `rar::attribution_attack`,
///   `rar::max_sensitivity`, `rar::parameter_randomization_test`, `rar::smooth_grad`) draws all
///   its numbers, in a fixed order, from the stream (seed, 0).
/// - A loss term (`rar::ig_norm`, `rar::ig_sum_norm`, `rar::ig_sum`, `rar::adversarial`) counts
///   its calls with a `rar::CallCounter`: its i-th call (from 0) draws from the stream (seed, i).
/// - Stream (seed, 0) is the generator seeded with `seed` itself, so one-shot functions draw what
///   they drew before streams existed; every other index is mixed with splitmix64
///   (`rar::stream_seed`).

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdint>

namespace rar {

namespace detail {

/// The splitmix64 finalizer (Steele, Lea, Flood, "Fast Splittable Pseudorandom Number
/// Generators", OOPSLA 2014): a bijection of 64-bit words with good avalanche.
inline constexpr uint64_t splitmix64(uint64_t z) noexcept {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace detail

/// The 64-bit seed of the stream (seed, index): `seed` itself for index 0, otherwise
/// splitmix64(splitmix64(seed) + index·γ) with γ = 0x9E3779B97F4A7C15 (the index-th output of a
/// splitmix64 sequence started at splitmix64(seed)), so nearby seeds and nearby indices give
/// unrelated streams, and (seed, index) and (index, seed) differ.
///
/// Example:
/// @code
/// uint64_t s = rar::stream_seed(7, 3);  // the seed behind rar::seeded_generator(7, 3)
/// @endcode
/// @param seed the user's seed (an option's `seed`)
/// @param index the call index (0 for a function called once; i for a term's i-th call)
/// @return the seed of the CPU generator of that stream
inline constexpr uint64_t stream_seed(uint64_t seed, uint64_t index) noexcept {
  return index == 0 ? seed
                    : detail::splitmix64(detail::splitmix64(seed) + index * 0x9E3779B97F4A7C15ULL);
}

/// A fresh CPU generator for the stream (seed, index): independent of the global RNG and of
/// everything that ran before, the same on every machine.
///
/// Every random draw of rar comes from such a generator (see the file's contract). Draw on the
/// CPU (e.g. with `rar::normal_like`) and move the result, so a seed gives the same numbers on
/// every device.
///
/// Example:
/// @code
/// at::Generator gen = rar::seeded_generator(/*seed=*/7, /*index=*/epoch);
/// torch::Tensor order = torch::randperm(n, gen, torch::kLong);
/// torch::Tensor noise = rar::normal_like(gen, images);  // images' dtype and device
/// @endcode
/// @param seed the user's seed
/// @param index the call index; streams with different (seed, index) are independent
/// @return a new `at::CPUGeneratorImpl` generator seeded with `rar::stream_seed(seed, index)`
inline at::Generator seeded_generator(uint64_t seed, uint64_t index = 0) {
  return at::make_generator<at::CPUGeneratorImpl>(stream_seed(seed, index));
}

/// Standard normal noise of `like`'s shape, drawn from `gen` on the CPU in float64, then cast to
/// `like`'s dtype and moved to its device (the same numbers on every device).
///
/// Example: `torch::Tensor noisy = x + 0.1 * rar::normal_like(gen, x);`
/// @param gen a CPU generator, e.g. from `rar::seeded_generator`
/// @param like the tensor whose shape, dtype and device the noise takes
/// @return noise with `like`'s shape, dtype and device
inline torch::Tensor normal_like(at::Generator& gen, const torch::Tensor& like) {
  return torch::randn(like.sizes(), gen, torch::TensorOptions().dtype(torch::kDouble))
      .to(like.options());
}

/// Uniform noise in [low, high) of `like`'s shape, drawn from `gen` on the CPU in float64, then
/// cast to `like`'s dtype and moved to its device.
///
/// Example: `torch::Tensor delta = rar::uniform_like(gen, x, -0.1, 0.1);`
/// @param gen a CPU generator, e.g. from `rar::seeded_generator`
/// @param like the tensor whose shape, dtype and device the noise takes
/// @param low lower end of the interval
/// @param high upper end of the interval
/// @return noise with `like`'s shape, dtype and device
inline torch::Tensor uniform_like(at::Generator& gen, const torch::Tensor& like, double low,
                                  double high) {
  return torch::empty(like.sizes(), torch::TensorOptions().dtype(torch::kDouble))
      .uniform_(low, high, gen)
      .to(like.options());
}

/// Counts the calls of a randomized loss term, so that call i draws from the stream
/// (seed, i): the term's state made explicit instead of a generator shared behind a const
/// `operator()`.
///
/// - `next()` is thread-safe (an atomic fetch-add): concurrent calls of one term get distinct
///   indices, but which call gets which index is then up to the scheduler. For reproducible
///   multi-threaded runs give each thread its own term (e.g. with its own seed).
/// - Copies are values: a copy starts from the count of the original at the time of copying and
///   then counts on its own (like copying a random engine). Terms are usually copied when they
///   are composed (`rar::cross_entropy() + term`), before their first call, so a composed
///   objective starts at call 0.
///
/// Example (a user term following the same contract):
/// @code
/// auto noisy = rar::make_term([calls = rar::CallCounter()](auto& model, const torch::Tensor& x,
///                                                          const torch::Tensor& y) {
///   at::Generator gen = rar::seeded_generator(/*seed=*/5, calls.next());
///   return rar::cross_entropy()(model, x + 0.01 * rar::normal_like(gen, x), y);
/// });
/// @endcode
class CallCounter {
 public:
  /// A counter at 0.
  CallCounter() noexcept = default;
  /// A counter that starts at `other`'s current count.
  /// @param other the counter to copy
  CallCounter(const CallCounter& other) noexcept : count_(other.count()) {}
  /// Takes `other`'s current count.
  /// @param other the counter to copy
  /// @return `*this`
  CallCounter& operator=(const CallCounter& other) noexcept {
    count_.store(other.count(), std::memory_order_relaxed);
    return *this;
  }

  /// Returns the index of this call (0, 1, 2, ...) and advances the count; thread-safe.
  /// @return the call index
  uint64_t next() const noexcept { return count_.fetch_add(1, std::memory_order_relaxed); }

  /// The number of calls counted so far (the index the next call gets).
  /// @return the count
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  mutable std::atomic<uint64_t> count_{0};
};

}  // namespace rar
