#pragma once
// Small text files read whole (configs beside the weights), and small text outputs (eval's tables) written whole or not at all: each goes to `<path>.tmp-<pid>` first, which
// the SIGTERM handler of io/temp_files removes, is flushed to disk and only then renamed onto `path`, so a
// reader never sees half a file and a killed process leaves no temporary behind.
#include <string>
#include <utility>
#include <vector>

namespace cm {

// The whole file; a cm::Error "<path>: cannot read" when it cannot be read.
std::string read_text_file(const std::string& path);

// Creates the parent folders, writes, fsyncs and renames. On failure the temporary is removed and a cm::Error
// "<path>: cannot write: <strerror>" is thrown.
void write_text_file(const std::string& path, const std::string& text);

// Several files (path, text) that belong together: every temporary is written before any is renamed, so when
// one cannot be written none of them is (earlier outputs of those paths stay as they were); should a rename
// fail, the files already renamed are removed too. Either way the error names the file that failed.
void write_text_files(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace cm
