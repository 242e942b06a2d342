// The randomness contract: one stream per (seed, call index), the same on every device; the
// explicit call counter of the terms, its copies and its thread safety.

#include <rar/rar.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <set>
#include <thread>
#include <vector>

TEST_CASE("stream seeds mix with splitmix64 and stream 0 is the seed itself", "[random]") {
  // splitmix64's first two outputs from state 0 (Steele, Lea, Flood 2014; Vigna's reference).
  CHECK(rar::detail::splitmix64(0) == 0xE220A8397B1DCDAFULL);
  CHECK(rar::detail::splitmix64(0x9E3779B97F4A7C15ULL) == 0x6E789E6AA1B965F4ULL);
  CHECK(rar::stream_seed(42, 0) == 42);
  CHECK(rar::stream_seed(42, 3) ==
        rar::detail::splitmix64(rar::detail::splitmix64(42) + 3 * 0x9E3779B97F4A7C15ULL));
  // Index 1 of seed 0 is the second output of splitmix64 started at splitmix64(0).
  CHECK(rar::stream_seed(0, 1) ==
        rar::detail::splitmix64(0xE220A8397B1DCDAFULL + 0x9E3779B97F4A7C15ULL));
  CHECK(rar::stream_seed(3, 5) != rar::stream_seed(5, 3));
  // 100 seeds × 100 indices: 10⁴ distinct streams.
  std::set<uint64_t> seeds;
  for (uint64_t s = 0; s < 100; ++s)
    for (uint64_t i = 0; i < 100; ++i) seeds.insert(rar::stream_seed(s, i));
  CHECK(seeds.size() == 10000);
  static_assert(rar::stream_seed(7, 0) == 7, "stream_seed is constexpr");
}

TEST_CASE("seeded_generator gives one reproducible stream per (seed, index)", "[random]") {
  const auto draw = [](at::Generator gen) {
    return torch::rand({1000}, gen, torch::TensorOptions().dtype(torch::kDouble));
  };
  // Stream (seed, 0) draws what a generator seeded with `seed` draws (earlier results hold).
  CHECK(draw(rar::seeded_generator(11)).equal(draw(at::make_generator<at::CPUGeneratorImpl>(11))));
  CHECK(draw(rar::seeded_generator(11, 0)).equal(draw(rar::seeded_generator(11))));
  CHECK(draw(rar::seeded_generator(11, 5)).equal(draw(rar::seeded_generator(11, 5))));
  torch::manual_seed(123);  // the global generator plays no part
  CHECK(draw(rar::seeded_generator(11, 5)).equal(draw(rar::seeded_generator(11, 5))));
  // Different indices and seeds: uncorrelated streams.
  const auto a = draw(rar::seeded_generator(11, 1));
  const auto b = draw(rar::seeded_generator(11, 2));
  const auto c = draw(rar::seeded_generator(12, 1));
  for (const auto& [u, v] : {std::make_pair(a, b), std::make_pair(a, c), std::make_pair(b, c)}) {
    const double corr = torch::corrcoef(torch::stack({u, v}))[0][1].item<double>();
    CHECK(std::abs(corr) < 0.1);
  }
  // The old detail name is the same function.
  CHECK(draw(rar::seeded_generator(11, 2)).equal(b));
}

TEST_CASE("normal_like and uniform_like draw in float64 on the CPU, then cast and move",
          "[random]") {
  const auto like64 = torch::zeros({3, 5}, torch::kDouble);
  const auto like32 = torch::zeros({3, 5}, torch::kFloat);
  at::Generator g1 = rar::seeded_generator(4, 1), g2 = rar::seeded_generator(4, 1);
  const auto n64 = rar::normal_like(g1, like64);
  const auto n32 = rar::normal_like(g2, like32);
  CHECK(n32.scalar_type() == torch::kFloat);
  CHECK(n32.equal(n64.to(torch::kFloat)));  // the same numbers, rounded
  const auto u = rar::uniform_like(g1, like64, -2.0, 3.0);
  CHECK(u.min().item<double>() >= -2.0);
  CHECK(u.max().item<double>() < 3.0);
  if (torch::cuda::is_available()) {
    at::Generator g3 = rar::seeded_generator(4, 1);
    CHECK(rar::normal_like(g3, like64.cuda()).cpu().equal(n64));
  }
}

TEST_CASE("CallCounter counts calls, copies start from the count and next() is thread-safe",
          "[random][counter]") {
  rar::CallCounter counter;
  CHECK(counter.next() == 0);
  CHECK(counter.next() == 1);
  CHECK(counter.count() == 2);
  rar::CallCounter copy = counter;  // a snapshot, then on its own
  CHECK(copy.next() == 2);
  CHECK(copy.next() == 3);
  CHECK(counter.next() == 2);
  rar::CallCounter assigned;
  assigned = copy;
  CHECK(assigned.count() == 4);
  // 8 threads × 1000 calls: every index 0 … 7999 exactly once.
  rar::CallCounter shared;
  std::vector<std::vector<uint64_t>> got(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) got[t].push_back(shared.next());
    });
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& g : got) all.insert(g.begin(), g.end());
  CHECK(all.size() == 8000);
  CHECK(*all.rbegin() == 7999);
  CHECK(shared.count() == 8000);
}
