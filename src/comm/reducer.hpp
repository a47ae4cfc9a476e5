#pragma once
// Element-wise all-reduce over every process of the job. Whole-model statistics (TIES / PCB with
// scope: model) reduce through this, so they are exact for any number of ranks. The single-process
// LocalReducer leaves values as they are; the MPI one (comm/) sums across ranks.
#include <cstddef>
#include <cstdint>

namespace cm {

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual void sum(uint64_t* values, size_t n) = 0;
  virtual void sum(double* values, size_t n) = 0;
  virtual void max(double* values, size_t n) = 0;
  virtual void min(double* values, size_t n) = 0;
};

class LocalReducer : public Reducer {
 public:
  void sum(uint64_t*, size_t) override {}
  void sum(double*, size_t) override {}
  void max(double*, size_t) override {}
  void min(double*, size_t) override {}
};

}  // namespace cm
