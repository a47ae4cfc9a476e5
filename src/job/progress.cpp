#include "job/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace cm {

std::string progress_line(const std::string& stage, const std::string& what, uint64_t done, uint64_t total,
                          double elapsed) {
  char line[256];
  const double share = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  int n = std::snprintf(line, sizeof line, "%s %llu/%llu %s (%.0f%%), %.1f s", stage.c_str(),
                        static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), what.c_str(),
                        std::floor(100.0 * share), elapsed);
  if (done > 0 && done < total && n > 0 && static_cast<size_t>(n) < sizeof line)
    std::snprintf(line + n, sizeof line - static_cast<size_t>(n), ", about %.0f s left",
                  elapsed * (1.0 - share) / share);
  return line;
}

Progress::Progress(std::string stage, std::string what, uint64_t total, bool enabled)
    : stage_(std::move(stage)),
      what_(std::move(what)),
      total_(total),
      enabled_(enabled && total > 0),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      shown_(start_) {}

Progress::~Progress() {
  if (enabled_ && tty_ && shown_any_) std::fputs("\n", stderr);
}

void Progress::advance(uint64_t n) {
  if (!enabled_) return;
  const std::lock_guard<std::mutex> lock(m_);
  done_ += n;
  show(done_ >= total_);
}

// Seconds before the first line (a terminal's, a log's).
constexpr double kQuietTty = 1.0, kQuietLog = 5.0;

void Progress::show(bool last) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int tenths = static_cast<int>(10 * done_ / total_);
  if (!shown_any_ && elapsed < (tty_ ? kQuietTty : kQuietLog)) return;
  if (tty_ ? (!last && now - shown_ < std::chrono::milliseconds(100)) : (!last && tenths <= tenths_shown_)) return;
  shown_ = now;
  tenths_shown_ = tenths;
  shown_any_ = true;
  const std::string line = "catmerge: " + progress_line(stage_, what_, done_, total_, elapsed);
  // One write per line; on a terminal the line is redrawn in place and cleared to its end.
  const std::string text = tty_ ? "\r" + line + "\033[K" : line + "\n";
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace cm
