// Locating the shared evaluation assets (env SINKLAB_ASSETS, default
// <source>/../shared/assets) from tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace sinklab::test {

inline std::string assets_dir() {
  if (const char* env = std::getenv("SINKLAB_ASSETS")) return env;
  return std::string(SINKLAB_SOURCE_DIR) + "/../shared/assets";
}

inline std::string asset(const std::string& rel) { return assets_dir() + "/" + rel; }

inline bool have_asset(const std::string& rel) { return std::filesystem::exists(asset(rel)); }

}  // namespace sinklab::test
