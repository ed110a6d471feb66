// Output checks shared by every writer of the CLI (output_guard.h).
#include "output_guard.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "sinklab/core.h"

namespace sinklab::cli {

namespace fs = std::filesystem;

namespace {

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

const char* special_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device node";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return nullptr;
}

std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

void OutputGuard::add_force_flag(CLI::App& app) {
  app.add_flag("--force", force_,
               "Replace output files that already exist (never an input of this command, a directory, a device, "
               "a FIFO or a socket)");
}

void OutputGuard::input(const std::string& path) {
  if (!path.empty()) inputs_.push_back(path);
}

void OutputGuard::check_file(const std::string& path, const std::string& flag) const {
  check(!path.empty(), flag + ": the output path is empty");
  if (path == kStdoutPath) return;
  check(path.find('\0') == std::string::npos, flag + ": the output path contains a NUL character");
  const std::string dir = folder_of(path);
  std::error_code ec;
  check(fs::is_directory(dir, ec), flag + ": cannot write '" + path + "': folder '" + dir + "' does not exist");
  check(::access(dir.c_str(), W_OK | X_OK) == 0,
        flag + ": cannot write '" + path + "': folder '" + dir + "' is not writable");
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0) return;  // a new file
  struct stat target {};
  const bool resolves = ::stat(path.c_str(), &target) == 0;
  if (const char* kind = special_kind(resolves ? target.st_mode : link.st_mode))
    throw Error(flag + ": '" + path + "' is " + kind + "; sinklab writes regular files only");
  // Never onto an input, even with --force (a symlink to an input counts too).
  for (const std::string& in : inputs_) {
    std::vector<std::string> files = {in};
    if (fs::is_directory(in, ec))
      for (const auto& e : fs::directory_iterator(in, ec)) files.push_back(e.path().string());
    for (const std::string& f : files) {
      struct stat s {};
      if (::stat(f.c_str(), &s) != 0) continue;
      check(!(resolves && same_file(s, target)) && !same_file(s, link),
            flag + ": '" + path + "' is an input of this command ('" + f + "'); choose another output");
    }
  }
  check(force_, flag + ": '" + path + "' already exists; pass --force to replace it");
}

void OutputGuard::check_folder_files(const std::string& dir, const std::vector<std::string>& names,
                                     const std::string& flag) const {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    check(fs::is_directory(dir, ec), flag + ": '" + dir + "' exists and is not a folder");
    for (const std::string& n : names) check_file((fs::path(dir) / n).string(), flag);
    return;
  }
  const std::string parent = folder_of(dir);
  check(fs::is_directory(parent, ec) && ::access(parent.c_str(), W_OK | X_OK) == 0,
        flag + ": cannot create folder '" + dir + "': '" + parent + "' does not exist or is not writable");
}

void write_output_text(const std::string& path, const std::string& text, const std::string& flag) {
  if (path == kStdoutPath) {
    check(std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0,
          flag + ": cannot write to stdout");
    return;
  }
  const std::string tmp = folder_of(path) + "/." + fs::path(path).filename().string() + ".tmp-" +
                          std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.good(), flag + ": cannot write '" + tmp + "'");
    out << text;
    out.close();
    if (!out.good()) {
      std::remove(tmp.c_str());
      throw Error(flag + ": cannot write '" + path + "' (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(flag + ": cannot replace '" + path + "' (" + ec.message() + ")");
  }
}

}  // namespace sinklab::cli
