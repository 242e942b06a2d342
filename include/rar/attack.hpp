#pragma once
/// @file
/// All attacks: PGD on predictions, attacks on attributions, the choice of the surrogate's β and
/// the attack-strength check. The threat model they share (ball, ascent, projection) is in
/// `rar/core/threat_model.hpp`; the smooth surrogate they differentiate
/// (`rar::smooth_surrogate`) is in `rar/nn/surrogate.hpp`.

#include <rar/attack/attribution_attack.hpp>
#include <rar/attack/pgd.hpp>
#include <rar/attack/strength.hpp>
#include <rar/nn/surrogate.hpp>
#include <rar/attack/surrogate_beta.hpp>
#include <rar/core/threat_model.hpp>
