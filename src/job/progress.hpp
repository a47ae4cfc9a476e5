#pragma once
// Progress of a stage of the job, on rank 0's stderr: what is done of the total, the time so far and the
// time left at the pace so far, e.g.
//   catmerge: merge 212/576 units (36%), 9.1 s, about 16 s left
// On a terminal it is one line rewritten in place (at most ten times a second); otherwise a plain line at
// every tenth of the total, so that logs stay short. A stage that ends within its first seconds prints
// nothing: quick runs keep their output to the result.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace cm {

class Progress {
 public:
  // Silent when !enabled (every rank but 0) or total == 0.
  Progress(std::string stage, std::string what, uint64_t total, bool enabled);
  ~Progress();  // ends a terminal line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // Any thread.
  void advance(uint64_t n = 1);

 private:
  void show(bool last);

  std::string stage_, what_;
  uint64_t total_, done_ = 0;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, shown_;
  int tenths_shown_ = 0;
  bool shown_any_ = false;
  std::mutex m_;
};

// The line itself, for tests: "<stage> <done>/<total> <what> (<pct>%), <elapsed> s[, about <left> s left]".
std::string progress_line(const std::string& stage, const std::string& what, uint64_t done, uint64_t total,
                          double elapsed);

}  // namespace cm
