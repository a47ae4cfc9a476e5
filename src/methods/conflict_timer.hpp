#pragma once
// Adds the wall time of consecutive steps to a ConflictStats field when the caller asked for stats.
#include <chrono>

#include "methods/conflict_bases.hpp"

namespace cm {

class StepTimer {
 public:
  explicit StepTimer(ConflictStats* stats) : stats_(stats), last_(std::chrono::steady_clock::now()) {}
  // Adds the time since the previous lap (or construction) to stats->*field.
  void lap(double ConflictStats::*field) {
    if (!stats_) return;
    const auto now = std::chrono::steady_clock::now();
    stats_->*field += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  ConflictStats* stats_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace cm
