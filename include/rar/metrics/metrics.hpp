#pragma once
/// @file
/// The attribution-similarity metrics on batches `[N, ...]`: top-k intersection, Kendall's tau-b
/// and Spearman's rho per sample, saliency maps, LENS, the center-of-mass shift and
/// max-sensitivity. Results are float64 `[N]` on the CPU. Each concept has its own header;
/// `rar/metrics.hpp` brings in every metric, the Quantus families included.

#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/batched_rank_correlation.hpp>
#include <rar/metrics/center_of_mass.hpp>
#include <rar/metrics/lens.hpp>
#include <rar/metrics/rank_correlation.hpp>
#include <rar/metrics/sensitivity.hpp>
#include <rar/metrics/topk.hpp>
