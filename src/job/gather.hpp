#pragma once
// Merged tensors on their way to the output (docs/DESIGN.md "Distributed run"). Rank 0 writes its own as it
// merges them and receives every other rank's as they come, writing each into the dataset declared for it up
// front, so the file's bytes do not depend on the number of ranks or the order of arrival. Every other rank
// sends each tensor as soon as it is merged and goes on merging, with at most `budget` bytes in flight (or one
// tensor larger than that); rank 0 has receives for at most as many bytes posted at a time, handed round the
// senders. A transfer moves only when rank 0 drives it (between its units: seconds apart under CAT), so the
// budget is what lets a sender run ahead meanwhile; it bounds memory, and no rank holds its whole shard.
// With a safetensors output nothing moves: every rank writes its own tensors into its own shards
// (job/hf_output.hpp), and the gather only reports each tensor done.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "comm/communicator.hpp"
#include "io/tensor_sink.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

class TensorGather {
 public:
  using Bytes = std::vector<unsigned char>;

  // One of this rank's tensors on its way out: its stored bytes (output dtype) go straight into the output
  // where this rank writes it, and into a buffer to send to rank 0 otherwise.
  class Tensor {
   public:
    // Bytes [offset, offset + n) of the tensor. Any thread; disjoint ranges, each byte once.
    void store(uint64_t offset, const void* data, size_t n);

   private:
    friend class TensorGather;
    int index_ = 0;
    TensorSink* out_ = nullptr;
    std::atomic<uint64_t>* write_ns_ = nullptr;
    const std::string* name_ = nullptr;
    Bytes bytes_;
  };

  // Where tensors go: all to rank 0's writer, or each into its own rank's.
  enum class Route { ToRoot, Local };
  // bytes[t]: the stored size of tensor t (output dtype). out: where this rank writes (ToRoot: rank 0's writer,
  // nullptr elsewhere). written(t): called after tensor t is written here (progress).
  TensorGather(const ShardPlan& plan, const ModelSpec& model, std::vector<uint64_t> bytes, Communicator& comm,
               Route route, TensorSink* out, std::function<void(int)> written, uint64_t budget = kDefaultBudget);
  static constexpr uint64_t kDefaultBudget = uint64_t{64} << 20;
  ~TensorGather();
  TensorGather(const TensorGather&) = delete;
  TensorGather& operator=(const TensorGather&) = delete;

  // This rank's tensors, in shard order: begin, store every byte, end (written, or sent).
  Tensor begin(int t);
  void end(Tensor tensor);
  // Drives transfers on; rank 0 writes what has arrived. Cheap: call between units.
  void poll();
  // After this rank's last tensor: every transfer done, and on rank 0 every tensor written.
  void finish();
  // Seconds spent writing into this rank's output so far, summed over the threads that wrote.
  double write_seconds() const { return static_cast<double>(write_ns_.load()) * 1e-9; }

 private:
  struct Transfer {
    int tensor = 0, peer = 0;
    Bytes bytes;
    std::unique_ptr<Request> request;
  };
  Bytes buffer(int t);  // reusing a free one
  // Whether `bytes` more fit in flight: always when nothing is.
  bool fits(uint64_t bytes) const { return flight_.empty() || flight_bytes_ + bytes <= budget_; }
  void post_receives();  // rank 0 of Route::ToRoot
  void complete(Transfer& t);
  void retire_front();  // the oldest transfer, done

  const ShardPlan& plan_;
  const ModelSpec& model_;
  std::vector<uint64_t> bytes_;
  Communicator& comm_;
  Route route_;
  TensorSink* out_;
  std::function<void(int)> written_;
  uint64_t budget_;
  uint64_t flight_bytes_ = 0;         // of flight_
  std::deque<Transfer> flight_;       // sends (others) or posted receives (rank 0)
  std::vector<int> next_;             // rank 0: each peer's next tensor to receive
  int turn_ = 1;                      // rank 0: the peer whose receive is posted next
  std::vector<Bytes> free_;
  std::atomic<uint64_t> write_ns_{0};
};

}  // namespace cm
