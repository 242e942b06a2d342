#pragma once
/// @file
/// Forwarding header: the threat model (ball, projection, ascent) lives in
/// `rar/core/threat_model.hpp`.
#include <rar/core/threat_model.hpp>
