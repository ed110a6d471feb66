// What a command may write. Every writer of the CLI checks its outputs before
// any computation: an existing file is replaced only with --force, never when
// it is one of the command's inputs (same file, compared by device and inode),
// never when it is a directory, device node, FIFO or socket; the folder must
// exist and be writable. Files are then written through a temporary file in
// the same folder and a rename, so a failure leaves the old file whole and a
// symlink is replaced itself, never written through.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace sinklab::cli {

// An output path of "-" is stdout (for every --json, --csv, --html): it is
// never checked as a file and written as is.
inline constexpr const char* kStdoutPath = "-";

class OutputGuard {
 public:
  // Adds --force to `app`.
  void add_force_flag(CLI::App& app);
  // A file or folder the command reads (a folder stands for the files directly in it).
  void input(const std::string& path);
  // Checks that `path` may be written by the option `flag`; throws Error naming it otherwise.
  void check_file(const std::string& path, const std::string& flag) const;
  // Checks an output folder: it may exist; the files the command will write in
  // it are checked as files.
  void check_folder_files(const std::string& dir, const std::vector<std::string>& names, const std::string& flag) const;
  bool force() const { return force_; }
  void set_force(bool force) { force_ = force; }

 private:
  bool force_ = false;
  std::vector<std::string> inputs_;
};

// Writes `text` to `path` through a temporary file in the same folder and a rename.
void write_output_text(const std::string& path, const std::string& text, const std::string& flag);

}  // namespace sinklab::cli
