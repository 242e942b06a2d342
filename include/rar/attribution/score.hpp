#pragma once
/// @file
/// Forwarding header: the score functions live in `rar/core/score.hpp`.
#include <rar/core/score.hpp>
