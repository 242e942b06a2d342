#pragma once
/// @file
/// Forwarding header: model calling (`rar::call_model`, `rar::is_model_v`) lives in
/// `rar/core/model.hpp`.
#include <rar/core/model.hpp>
