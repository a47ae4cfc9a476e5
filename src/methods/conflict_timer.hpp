#pragma once
// Adds the wall time of consecutive steps to a ConflictTimes field when the caller asked for times.
#include <chrono>

#include "methods/linalg.hpp"

namespace cm {

class StepTimer {
 public:
  explicit StepTimer(ConflictTimes* times) : times_(times), last_(std::chrono::steady_clock::now()) {}
  // Adds the time since the previous lap (or construction) to times->*field.
  void lap(double ConflictTimes::*field) {
    if (!times_) return;
    const auto now = std::chrono::steady_clock::now();
    times_->*field += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  ConflictTimes* times_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace cm
