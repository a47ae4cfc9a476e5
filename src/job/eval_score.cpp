#include "job/eval_score.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "common/error.hpp"
#include "common/parallel.hpp"
#include "io/safetensors.hpp"
#include "job/eval_data.hpp"
#include "methods/host_dense_ops.hpp"

namespace cm {

namespace {

// Exemplars [first, first + count) of x.
Exemplars slice(const Exemplars& x, int64_t first, int64_t count) {
  Exemplars s;
  s.kind = x.kind;
  s.n = count;
  s.channels = x.channels, s.height = x.height, s.width = x.width, s.length = x.length;
  const int64_t image = x.channels * x.height * x.width;  // 0 for tokens, as the length is for images
  s.pixels.assign(x.pixels.begin() + first * image, x.pixels.begin() + (first + count) * image);
  s.ids.assign(x.ids.begin() + first * x.length, x.ids.begin() + (first + count) * x.length);
  s.mask.assign(x.mask.begin() + first * x.length, x.mask.begin() + (first + count) * x.length);
  return s;
}

// On CPU threads a batch goes through the forward in chunks whose hidden state stays under this many
// floats: a block's activations (a few times the hidden state) then stay in cache, which took 5-10% off the
// CPU time of the zoo's batches of 64 images, and the threads get more pieces to share. An exemplar's
// numbers do not depend on the exemplars it runs with (each product row is computed alone).
constexpr int64_t kChunkHidden = int64_t{1} << 17;

}  // namespace

EvalScorer::EvalScorer(const EvalConfig& cfg, const ArchModel& arch, Backend& backend,
                       const std::vector<std::string>& tasks, const std::string& split, int rank, int size)
    : backend_(backend), forward_(make_forward(arch, backend)) {
  CM_ASSERT(size >= 1 && rank >= 0 && rank < size && cfg.batch >= 1);
  const SafetensorsFile heads(cfg.heads);
  const int64_t hidden = forward_->pooled_dim();
  for (const std::string& task : tasks) {
    tasks_.push_back(Task{task, read_head(heads, task, hidden)});
    const Head& head = tasks_.back().head;
    const EvalSet set(cfg.data, task, split);
    // Every label is checked, this rank's or not, so that all ranks fail alike.
    for (int64_t i = 0; i < set.size(); ++i)
      if (set.labels()[i] < 0 || set.labels()[i] >= head.classes)
        fail(set.where(), "label " + std::to_string(set.labels()[i]) + " of exemplar " + std::to_string(i) +
                              " is outside the head's " + std::to_string(head.classes) + " classes");
    const int64_t batches = (set.size() + cfg.batch - 1) / cfg.batch;
    for (int64_t b = rank; b < batches; b += size) {
      const int64_t first = b * cfg.batch, count = std::min<int64_t>(cfg.batch, set.size() - first);
      Exemplars x = set.batch(first, count);
      forward_->check_input(x, set.where());
      flops_ += forward_->matmul_flops(x) + 2.0 * static_cast<double>(count * head.classes * hidden);
      const int64_t chunks =
          backend.concurrent_callers()
              ? std::clamp<int64_t>((forward_->hidden_elements(1, x) + kChunkHidden - 1) / kChunkHidden, 1, count)
              : 1;
      const auto labels = set.labels().begin() + first;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t lo = count * c / chunks, hi = count * (c + 1) / chunks;
        chunks_.push_back(Chunk{tasks_.size() - 1, chunks == 1 ? std::move(x) : slice(x, lo, hi - lo),
                                std::vector<int64_t>(labels + lo, labels + hi)});
      }
    }
  }
}

std::vector<TaskAccuracy> EvalScorer::counts(const WeightSource& weights) {
  const int64_t hidden = forward_->pooled_dim();
  // The forward asks for each tensor as it reaches it; the batches' threads take turns at `weights`.
  std::mutex fetching;
  const WeightSource serial = [&](const std::string& name) {
    const std::lock_guard<std::mutex> lock(fetching);
    return weights(name);
  };
  // A chunk per thread rather than every thread on each product: the element-wise work (norms, activations,
  // softmax) and the small per-head products then run in parallel too.
  const int workers =
      backend_.concurrent_callers() ? std::min<int>(static_cast<int>(chunks_.size()), cpu_threads()) : 1;
  std::vector<uint64_t> correct(chunks_.size(), 0);
  {
    std::optional<OneBlasThread> one;
    if (workers > 1) one.emplace();
    parallel_for(static_cast<int64_t>(chunks_.size()), workers, [&](int64_t i, int) {
      const Chunk& b = chunks_[static_cast<size_t>(i)];
      const Head& head = tasks_[b.task].head;
      const std::vector<float> pooled = forward_->run(serial, b.x, nullptr);
      std::vector<float> logits(static_cast<size_t>(b.x.n * head.classes));
      backend_.linear(pooled.data(), head.weight.data(), head.bias.data(), logits.data(), b.x.n, head.classes, hidden);
      for (int64_t e = 0; e < b.x.n; ++e) {
        const float* row = logits.data() + e * head.classes;
        int64_t best = 0;
        for (int64_t c = 1; c < head.classes; ++c)
          if (row[c] > row[best]) best = c;
        correct[static_cast<size_t>(i)] += best == b.labels[static_cast<size_t>(e)] ? 1 : 0;
      }
    });
  }
  std::vector<TaskAccuracy> out(tasks_.size());
  for (size_t t = 0; t < tasks_.size(); ++t) out[t].task = tasks_[t].name;
  for (size_t i = 0; i < chunks_.size(); ++i) {
    out[chunks_[i].task].images += static_cast<uint64_t>(chunks_[i].x.n);
    out[chunks_[i].task].correct += correct[i];
  }
  return out;
}

WeightSource checkpoint_weights(const Checkpoint& model) {
  const auto kept = std::make_shared<std::unordered_map<std::string, WeightTensor>>();
  return [&model, kept](const std::string& name) {
    auto it = kept->find(name);
    if (it == kept->end()) it = kept->emplace(name, own_weight(model.read(name))).first;
    return it->second;
  };
}

std::vector<TaskAccuracy> score_model(EvalScorer& scorer, const WeightSource& weights, Communicator& comm) {
  std::vector<TaskAccuracy> acc = scorer.counts(weights);
  std::vector<uint64_t> counts;
  for (const TaskAccuracy& a : acc) {
    counts.push_back(a.images);
    counts.push_back(a.correct);
  }
  comm.sum(counts.data(), counts.size());
  for (size_t t = 0; t < acc.size(); ++t) {
    acc[t].images = counts[2 * t];
    acc[t].correct = counts[2 * t + 1];
  }
  return acc;
}

}  // namespace cm
