// The default batching rule (rar/core/batching.hpp): which chunks it runs, that it sizes them
// from the bytes a pass really allocates, that it halves on out-of-memory errors off the CPU,
// and that IG and SmoothGrad give the same results under it as in one batch.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <utility>
#include <vector>

namespace {

using Chunks = std::vector<std::pair<int64_t, int64_t>>;

// Restores the process-wide budget when a test ends.
struct BudgetGuard {
  int64_t saved = rar::chunk_memory_budget();
  ~BudgetGuard() { rar::set_chunk_memory_budget(saved); }
};

// Consecutive, non-empty chunks that cover [0, rows) exactly.
void check_cover(const Chunks& chunks, int64_t rows) {
  REQUIRE_FALSE(chunks.empty());
  CHECK(chunks.front().first == 0);
  CHECK(chunks.back().second == rows);
  for (size_t i = 0; i < chunks.size(); ++i) {
    CHECK(chunks[i].first < chunks[i].second);
    if (i > 0) CHECK(chunks[i].first == chunks[i - 1].second);
  }
}

}  // namespace

TEST_CASE("a fixed internal batch size gives chunks of exactly that many rows", "[batching]") {
  Chunks chunks;
  rar::detail::for_each_row_chunk(10, 4, torch::Device(torch::kCPU), 4,
                                  [&](int64_t a, int64_t b) { chunks.emplace_back(a, b); });
  CHECK(chunks == Chunks{{0, 4}, {4, 8}, {8, 10}});
}

TEST_CASE("the batching rule runs a small batch in one pass", "[batching]") {
  auto chunks_of = [](int64_t rows, int64_t row_bytes) {
    Chunks chunks;
    rar::detail::for_each_row_chunk(rows, 0, torch::Device(torch::kCPU), row_bytes,
                                    [&](int64_t a, int64_t b) { chunks.emplace_back(a, b); });
    return chunks;
  };
  // Up to 64 rows always; up to 128 when 32 × the input row fits the budget (64 MiB) that often.
  for (int64_t rows : {1, 17, 64}) CHECK(chunks_of(rows, int64_t{1} << 30) == Chunks{{0, rows}});
  CHECK(chunks_of(128, 3136) == Chunks{{0, 128}});
  const Chunks large_rows = chunks_of(128, int64_t{1} << 20);  // 32 MiB per row guessed: probe
  check_cover(large_rows, 128);
  CHECK(large_rows.size() >= 3);
  CHECK(chunks_of(129, 4).size() >= 3);  // beyond 128 rows: always probed
}

TEST_CASE("the batching rule sizes CPU chunks from the bytes a row allocates", "[batching]") {
  BudgetGuard guard;
  // A pass that allocates 4 KiB per row and holds it until the pass ends (plus 64 KiB that do
  // not grow with the rows, which the rule must not count per row).
  auto run = [](int64_t rows, int64_t budget) {
    rar::set_chunk_memory_budget(budget);
    Chunks chunks;
    rar::detail::for_each_row_chunk(rows, 0, torch::Device(torch::kCPU), 4096, [&](int64_t a, int64_t b) {
      const torch::Tensor per_row = torch::ones({b - a, 1024}, torch::kFloat);
      const torch::Tensor fixed = torch::ones({16 * 1024}, torch::kFloat);
      CHECK(per_row.sum().item<double>() == 1024.0 * static_cast<double>(b - a));
      CHECK(fixed.numel() == 16 * 1024);
      chunks.emplace_back(a, b);
    });
    return chunks;
  };
  // Rows of 4 KiB input: the probes have p = budget / (4 × 32 × 4 KiB) rows (within [4, 16]) and 2p.
  const Chunks one_mib = run(1000, int64_t{1} << 20);
  check_cover(one_mib, 1000);
  REQUIRE(one_mib.size() == 6);
  CHECK(one_mib[0] == std::make_pair(int64_t{0}, int64_t{4}));   // first probe, p = 4
  CHECK(one_mib[1] == std::make_pair(int64_t{4}, int64_t{12}));  // second probe, 2p
  // At most 1 MiB / 4 KiB = 256 rows: the 988 rows left in 4 equal chunks of 247.
  for (size_t i = 2; i < one_mib.size(); ++i) CHECK(one_mib[i].second - one_mib[i].first == 247);
  // Four times the budget: p = 8, and four times the rows per chunk (2976 rows, 3 × 992 ≤ 1024).
  const Chunks four_mib = run(3000, int64_t{4} << 20);
  check_cover(four_mib, 3000);
  REQUIRE(four_mib.size() == 5);
  CHECK(four_mib[1] == std::make_pair(int64_t{8}, int64_t{24}));
  CHECK(four_mib[2].second - four_mib[2].first == 992);
  // A budget below one row still makes progress, in chunks of the second probe's size.
  const Chunks tiny = run(200, 1024);
  check_cover(tiny, 200);
  CHECK(tiny[2].second - tiny[2].first == 8);
  CHECK_THROWS_WITH(rar::set_chunk_memory_budget(0),
                    Catch::Contains("rar::set_chunk_memory_budget: bytes must be > 0, got 0"));
}

TEST_CASE("off the CPU the batching rule runs one batch and halves it on out-of-memory",
          "[batching]") {
  const torch::Device device(torch::kMeta);
  Chunks done;
  int failures = 0;
  rar::detail::for_each_row_chunk(100, 0, device, 4, [&](int64_t a, int64_t b) {
    if (b - a > 30) {
      ++failures;
      TORCH_CHECK(false, "CUDA out of memory. Tried to allocate 2.00 GiB");
    }
    done.emplace_back(a, b);
  });
  check_cover(done, 100);
  CHECK(failures == 2);  // 100 and 50 rows failed, 25 fit
  for (const auto& [a, b] : done) CHECK(b - a <= 25);
  // Other errors are not swallowed.
  CHECK_THROWS_WITH(rar::detail::for_each_row_chunk(
                        10, 0, device, 4,
                        [](int64_t, int64_t) { TORCH_CHECK(false, "shape mismatch in layer 3"); }),
                    Catch::Contains("shape mismatch in layer 3"));
}

TEST_CASE("IG and SmoothGrad under the batching rule equal one batch", "[batching]") {
  BudgetGuard guard;
  rar::set_chunk_memory_budget(int64_t{64} << 10);  // small: many chunks
  auto model = rar::test::smooth_mlp(6, 9, 4);
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({12, 6}, torch::kDouble);
  const torch::Tensor y = torch::randint(0, 4, {12}, torch::kLong);
  const auto options = rar::IGOptions().target(y).steps(20);  // 240 path rows
  const torch::Tensor by_rule = rar::integrated_gradients(model, x, options);
  const torch::Tensor one_batch =
      rar::integrated_gradients(model, x, rar::IGOptions(options).internal_batch_size(240));
  CHECK(torch::allclose(by_rule, one_batch, 1e-13, 1e-15));
  CHECK(by_rule.abs().sum().item<double>() > 1e-3);

  // SmoothGrad of IG: stacked noisy copies in chunks, against one call per noise sample.
  const auto smooth = rar::SmoothGradOptions().samples(8).stddev(0.2).seed(3).target(y);
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(10));
  const torch::Tensor stacked = rar::smooth_grad(model, ig, x, smooth);
  const torch::Tensor per_sample =
      rar::smooth_grad(model, ig, x, rar::SmoothGradOptions(smooth).internal_batch_size(12));
  CHECK(torch::allclose(stacked, per_sample, 1e-13, 1e-15));
  // ... and against the definition, written out with the same noise stream.
  at::Generator gen = rar::seeded_generator(3);
  torch::Tensor sum = torch::zeros_like(x);
  for (int s = 0; s < 8; ++s) {
    const torch::Tensor noisy = x + 0.2 * rar::normal_like(gen, x);
    sum += rar::integrated_gradients(model, noisy, rar::IGOptions().target(y).steps(10));
  }
  CHECK(torch::allclose(stacked, sum / 8, 1e-13, 1e-15));
  CHECK_THROWS_WITH(
      rar::smooth_grad(model, ig, x, rar::SmoothGradOptions(smooth).internal_batch_size(-1)),
      Catch::Contains("internal_batch_size must be >= 0"));
}
