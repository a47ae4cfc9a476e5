#include "job/gather.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/error.hpp"

namespace cm {

TensorGather::TensorGather(const ShardPlan& plan, const ModelSpec& model, std::vector<uint64_t> bytes,
                           Communicator& comm, Route route, TensorSink* out, std::function<void(int)> written,
                           uint64_t budget)
    : plan_(plan),
      model_(model),
      bytes_(std::move(bytes)),
      comm_(comm),
      route_(route),
      out_(out),
      written_(std::move(written)),
      budget_(budget) {
  if (route == Route::Local) {
    CM_ASSERT(out != nullptr);
    return;
  }
  CM_ASSERT((comm.rank() == 0) == (out != nullptr));
  if (comm.rank() != 0) return;
  for (const RankShard& s : plan.ranks) next_.push_back(s.first_tensor);
  post_receives();
}

TensorGather::~TensorGather() = default;

TensorGather::Bytes TensorGather::buffer(int t) {
  Bytes b;
  if (!free_.empty()) {
    b = std::move(free_.back());
    free_.pop_back();
  }
  b.resize(static_cast<size_t>(bytes_[t]));
  return b;
}

namespace {

uint64_t ns_since(std::chrono::steady_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t).count());
}

}  // namespace

void TensorGather::Tensor::store(uint64_t offset, const void* data, size_t n) {
  if (out_) {
    const auto start = std::chrono::steady_clock::now();
    out_->write_stored_bytes(*name_, offset, data, n);
    *write_ns_ += ns_since(start);
    return;
  }
  CM_ASSERT(offset + n <= bytes_.size());
  std::memcpy(bytes_.data() + offset, data, n);
}

TensorGather::Tensor TensorGather::begin(int t) {
  Tensor tensor;
  tensor.index_ = t;
  tensor.name_ = &model_.tensors[t].name;
  tensor.out_ = out_;
  tensor.write_ns_ = &write_ns_;
  if (!out_) tensor.bytes_ = buffer(t);
  return tensor;
}

void TensorGather::end(Tensor tensor) {
  const int t = tensor.index_;
  if (out_) {
    if (written_) written_(t);
    poll();
    return;
  }
  // Wait for the oldest sends while this one would pass the budget.
  while (!fits(bytes_[t])) {
    flight_.front().request->wait();
    retire_front();
  }
  Transfer tr{t, 0, std::move(tensor.bytes_), nullptr};
  tr.request = comm_.isend(tr.bytes.data(), tr.bytes.size(), 0);
  flight_bytes_ += bytes_[t];
  flight_.push_back(std::move(tr));
  poll();
}

// Rank 0: receives within the budget, one per turn of the peers that still have tensors to send (a peer's
// next tensor that does not fit ends the round: its turn comes first next time).
void TensorGather::post_receives() {
  const int ranks = static_cast<int>(plan_.ranks.size());
  for (int tries = 0; tries < ranks; ++tries) {
    const int peer = turn_;
    if (peer == 0 || peer >= ranks || next_[peer] >= plan_.ranks[peer].end_tensor) {
      turn_ = turn_ + 1 < ranks ? turn_ + 1 : 1;
      continue;
    }
    const int t = next_[peer];
    if (!fits(bytes_[t])) return;
    turn_ = turn_ + 1 < ranks ? turn_ + 1 : 1;
    ++next_[peer];
    Transfer tr{t, peer, buffer(t), nullptr};
    tr.request = comm_.irecv(tr.bytes.data(), tr.bytes.size(), peer);
    flight_bytes_ += bytes_[t];
    flight_.push_back(std::move(tr));
    tries = -1;  // a posted receive: every peer may take another turn
  }
}

void TensorGather::complete(Transfer& tr) {
  if (out_) {
    const auto start = std::chrono::steady_clock::now();
    out_->write_stored(model_.tensors[tr.tensor].name, tr.bytes.data());
    write_ns_ += ns_since(start);
    if (written_) written_(tr.tensor);
  }
  flight_bytes_ -= bytes_[tr.tensor];
  free_.push_back(std::move(tr.bytes));
}

void TensorGather::retire_front() {
  complete(flight_.front());
  flight_.pop_front();
}

void TensorGather::poll() {
  for (auto it = flight_.begin(); it != flight_.end();) {
    if (!it->request->done()) {
      ++it;
      continue;
    }
    complete(*it);
    it = flight_.erase(it);
  }
  if (out_ && route_ == Route::ToRoot) post_receives();
}

void TensorGather::finish() {
  while (!flight_.empty()) {
    flight_.front().request->wait();
    retire_front();
    if (out_) post_receives();
  }
}

}  // namespace cm
