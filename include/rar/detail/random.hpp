#pragma once
/// @file
/// Forwarding header: the seeded generators (`rar::seeded_generator`) live in
/// `rar/core/random.hpp`.
#include <rar/core/random.hpp>
