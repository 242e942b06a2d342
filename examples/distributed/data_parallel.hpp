#pragma once
/// @file
/// Data-parallel training over LibTorch's c10d: which rows of a global batch a rank takes, the
/// one-buffer gradient all-reduce, and the start-up parameter broadcast. Backend-neutral: works
/// with any `c10d::ProcessGroup` (Gloo on the CPU, NCCL on GPUs); see docs/distributed.md.

#include <torch/torch.h>

#include <cstdint>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <vector>

namespace rar {
namespace examples {

/// Positions of the rows of a global batch of `global_batch` rows that rank `rank` of
/// `world_size` takes: rank, rank + W, rank + 2W, ... (int64, `[global_batch / W]`).
///
/// The shards of all ranks partition the batch into equal parts, which is what makes the
/// averaged gradient equal the single-process one (docs/distributed.md).
///
/// Example:
/// @code
/// shard_positions(8, 1, 2);  // [1, 3, 5, 7]
/// @endcode
/// @throws c10::Error when the rank is out of range or W does not divide the batch
inline torch::Tensor shard_positions(int64_t global_batch, int64_t rank, int64_t world_size) {
  TORCH_CHECK(world_size >= 1, "rar::examples::shard_positions: world_size must be >= 1, got ",
              world_size);
  TORCH_CHECK(rank >= 0 && rank < world_size,
              "rar::examples::shard_positions: rank must lie in [0, ", world_size, "), got ", rank);
  TORCH_CHECK(global_batch % world_size == 0, "rar::examples::shard_positions: the global batch (",
              global_batch, ") must be divisible by the world size (", world_size, ")");
  return torch::arange(rank, global_batch, world_size, torch::kLong);
}

/// Rows rank, rank + W, ... of `batch` (dimension 0): this rank's share of a global batch.
///
/// Example:
/// @code
/// torch::Tensor x_rank = shard_rows(x_global, rank, world_size);  // [B / W, ...]
/// @endcode
inline torch::Tensor shard_rows(const torch::Tensor& batch, int64_t rank, int64_t world_size) {
  TORCH_CHECK(batch.defined() && batch.dim() >= 1,
              "rar::examples::shard_rows: batch must have a batch dimension");
  return batch.index_select(0, shard_positions(batch.size(0), rank, world_size).to(batch.device()));
}

/// Averages the parameters' gradients over all ranks in ONE all-reduce: the gradients (an
/// undefined one counts as zeros) and `local_value` are flattened into one buffer, summed over
/// the ranks, divided by W and copied back into each `.grad()`. With `group == nullptr` (a
/// single process) the gradients are left as they are.
///
/// Every rank ends with the same bits: the backends' sum gives every rank the same result, and
/// the division by W is the same on each. For losses that are means over equal shards the
/// result is the gradient of the mean over the global batch (docs/distributed.md).
///
/// Example:
/// @code
/// loss.backward();
/// const double global_loss = allreduce_gradients(group.get(), net->parameters(),
///                                                loss.item<double>());
/// optimizer.step();
/// @endcode
/// @param group the process group, or nullptr for one process
/// @param parameters the parameters whose `.grad()` to average (same dtype and device)
/// @param local_value a number to average along with them (e.g. this rank's loss)
/// @return the mean of `local_value` over the ranks
inline double allreduce_gradients(c10d::ProcessGroup* group,
                                  const std::vector<torch::Tensor>& parameters,
                                  double local_value = 0.0) {
  if (group == nullptr || group->getSize() == 1 || parameters.empty()) return local_value;
  const auto options = parameters.front().options();
  std::vector<torch::Tensor> pieces;
  pieces.reserve(parameters.size() + 1);
  for (const auto& p : parameters) {
    TORCH_CHECK(p.scalar_type() == options.dtype() && p.device() == options.device(),
                "rar::examples::allreduce_gradients: all parameters must share one dtype and "
                "device, got ",
                p.scalar_type(), " on ", p.device(), " next to ", options.dtype(), " on ",
                options.device());
    pieces.push_back(p.grad().defined() ? p.grad().reshape(-1)
                                        : torch::zeros({p.numel()}, options));
  }
  pieces.push_back(torch::full({1}, local_value, options));
  std::vector<torch::Tensor> buffer{torch::cat(pieces)};
  group->allreduce(buffer)->wait();
  const torch::Tensor mean = buffer[0].div_(static_cast<double>(group->getSize()));
  int64_t offset = 0;
  for (const auto& p : parameters) {
    const torch::Tensor slice = mean.slice(0, offset, offset + p.numel()).view_as(p);
    if (p.grad().defined()) {
      p.grad().detach().copy_(slice);
    } else {
      p.mutable_grad() = slice.clone();
    }
    offset += p.numel();
  }
  return mean[offset].item<double>();
}

/// Copies rank `root`'s parameters to every rank (one broadcast of a flat buffer), so that all
/// ranks start from the same model whatever their random state. No-op for `group == nullptr`.
///
/// Example:
/// @code
/// broadcast_parameters(group.get(), net->parameters());
/// @endcode
inline void broadcast_parameters(c10d::ProcessGroup* group,
                                 const std::vector<torch::Tensor>& parameters, int root = 0) {
  if (group == nullptr || group->getSize() == 1 || parameters.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> pieces;
  pieces.reserve(parameters.size());
  for (const auto& p : parameters) pieces.push_back(p.detach().reshape(-1));
  std::vector<torch::Tensor> buffer{torch::cat(pieces)};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  group->broadcast(buffer, options)->wait();
  int64_t offset = 0;
  for (const auto& p : parameters) {
    p.detach().copy_(buffer[0].slice(0, offset, offset + p.numel()).view_as(p));
    offset += p.numel();
  }
}

}  // namespace examples
}  // namespace rar
