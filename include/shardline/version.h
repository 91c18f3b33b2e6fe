// File: shardline/version.h
#pragma once

#include <string_view>

namespace shardline {
inline constexpr std::string_view kVersion = "0.1.0";
}  // namespace shardline
