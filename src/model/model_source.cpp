// Models named by a Hugging Face repo id, found in the local cache (model.h,
// resolve_model_source). The cache layout: models--ORG--NAME/refs/main holds a
// commit hash, and models--ORG--NAME/snapshots/HASH/ holds the files.
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sinklab/model.h"

namespace sinklab {

namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}

std::vector<fs::path> hub_folders() {
  std::vector<fs::path> out;
  if (const std::string v = env("HF_HUB_CACHE"); !v.empty()) out.emplace_back(v);
  if (const std::string v = env("HF_HOME"); !v.empty()) out.push_back(fs::path(v) / "hub");
  if (const std::string v = env("XDG_CACHE_HOME"); !v.empty()) out.push_back(fs::path(v) / "huggingface" / "hub");
  if (const std::string v = env("HOME"); !v.empty()) out.push_back(fs::path(v) / ".cache" / "huggingface" / "hub");
  return out;
}

// The snapshot refs/main names, else the most recently written one; empty if none.
fs::path pick_snapshot(const fs::path& repo) {
  std::error_code ec;
  std::ifstream ref(repo / "refs" / "main");
  std::string hash;
  if (ref >> hash && !hash.empty() && hash.find('/') == std::string::npos && fs::is_directory(repo / "snapshots" / hash, ec))
    return repo / "snapshots" / hash;
  fs::path best;
  fs::file_time_type newest{};
  for (const auto& e : fs::directory_iterator(repo / "snapshots", ec)) {
    if (!e.is_directory(ec)) continue;
    const auto t = fs::last_write_time(e.path(), ec);
    if (best.empty() || t > newest) best = e.path(), newest = t;
  }
  return best;
}

// ORG/NAME with the characters the Hub allows (letters, digits, '_', '.', '-';
// each part starting with a letter or digit), not a relative path like "a/..".
bool looks_like_repo_id(const std::string& s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos || s.find('/', slash + 1) != std::string::npos) return false;
  if (s.find("..") != std::string::npos) return false;
  for (const std::string& part : {s.substr(0, slash), s.substr(slash + 1)}) {
    if (part.empty() || !std::isalnum(static_cast<unsigned char>(part[0]))) return false;
    for (char ch : part)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') return false;
  }
  return true;
}

}  // namespace

std::string resolve_model_source(const std::string& path) {
  std::error_code ec;
  if (path.empty() || fs::exists(path, ec)) return path;
  if (!looks_like_repo_id(path)) return path;
  const std::string folder = "models--" + path.substr(0, path.find('/')) + "--" + path.substr(path.find('/') + 1);
  std::string looked;
  for (const fs::path& hub : hub_folders()) {
    const fs::path repo = hub / folder;
    looked += "\n  " + repo.string();
    if (!fs::is_directory(repo, ec)) continue;
    const fs::path snap = pick_snapshot(repo);
    if (!snap.empty()) return snap.string();
    looked += " (no snapshot in it)";
  }
  throw Error("model '" + path + "' is neither a file nor a folder, and no Hugging Face cache holds it; looked in:" +
              looked + "\n(sinklab never downloads: fetch it with `huggingface-cli download " + path +
              "` or give a path)");
}

}  // namespace sinklab
