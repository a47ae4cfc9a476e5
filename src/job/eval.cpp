#include "job/eval.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "arch/registry.hpp"
#include "common/error.hpp"
#include "features/forward.hpp"
#include "io/exemplars.hpp"
#include "io/h5.hpp"
#include "io/safetensors.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

// One task's evaluation split in the data file: its exemplars (images or token sequences, io/exemplars)
// and integer labels, read in batches.
class EvalSet {
 public:
  EvalSet(const std::string& file, const std::string& task, const std::string& split)
      : file_(file), group_(task + "/" + split), where_(file + ":/" + group_) {
    h5::silence_errors();
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) fail(file, "no such file (eval.data)");
    const h5::Id f = h5::check(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), file, "cannot open as HDF5 (eval.data)");
    for (const std::string& prefix : {task, group_})
      if (H5Lexists(f.get(), prefix.c_str(), H5P_DEFAULT) <= 0)
        fail(where_, "no '" + prefix + "' in the file (task '" + task + "', split '" + split + "')");
    n_ = count_exemplars(file, group_, "");
    const std::string lpath = group_ + "/labels";
    if (H5Lexists(f.get(), lpath.c_str(), H5P_DEFAULT) <= 0) fail(where_, "no '" + lpath + "' in the file");
    const h5::Id labels = h5::check(H5Dopen2(f.get(), lpath.c_str(), H5P_DEFAULT), where_, "cannot open '" + lpath + "'");
    const h5::Id ltype = h5::check(H5Dget_type(labels.get()), where_, "cannot read the labels' datatype");
    if (H5Tget_class(ltype.get()) != H5T_INTEGER) fail(where_, "labels are not integers");
    const std::vector<int64_t> lshape = h5::shape_of(labels.get(), where_);
    if (lshape.size() != 1 || lshape[0] != n_)
      fail(where_, "labels have shape " + shape_string(lshape) + ", expected [" + std::to_string(n_) + "]");
    labels_.resize(static_cast<size_t>(n_));
    if (n_ > 0)
      h5::check(H5Dread(labels.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels_.data()), where_,
                "cannot read the labels");
  }

  int64_t size() const { return n_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  const std::string& where() const { return where_; }
  Exemplars batch(int64_t first, int64_t count) const { return read_exemplar_range(file_, group_, first, count, ""); }

 private:
  std::string file_, group_, where_;
  int64_t n_ = 0;
  std::vector<int64_t> labels_;
};

struct Head {
  int64_t classes = 0;
  std::vector<float> weight, bias;  // [classes, hidden], [classes]
};

Head read_head(const SafetensorsFile& heads, const std::string& task, int64_t hidden) {
  Head h;
  const std::string wname = task + ".weight", bname = task + ".bias";
  const TensorInfo* w = heads.find(wname);
  const TensorInfo* b = heads.find(bname);
  if (!w) fail(heads.path(), "no float tensor '" + wname + "' (the head of task '" + task + "')");
  if (!b) fail(heads.path(), "no float tensor '" + bname + "' (the head of task '" + task + "')");
  if (w->shape.size() != 2 || w->shape[1] != hidden || w->shape[0] < 1)
    fail(heads.path(), wname + " has shape " + shape_string(w->shape) + ", expected [classes, " +
                           std::to_string(hidden) + "] (heads sit on the pooled output)");
  if (b->shape != std::vector<int64_t>{w->shape[0]})
    fail(heads.path(), bname + " has shape " + shape_string(b->shape) + ", expected [" + std::to_string(w->shape[0]) + "]");
  h.classes = w->shape[0];
  h.weight = heads.read(wname);
  h.bias = heads.read(bname);
  return h;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// Default output prefix: next to the model, "<model without .h5 or trailing slash>.eval-<split>".
std::string default_prefix(const std::string& model, const std::string& split) {
  std::string p = model;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const fs::path path(p);
  if (path.extension() == ".h5" || path.extension() == ".safetensors") p = (path.parent_path() / path.stem()).string();
  return p + ".eval-" + split;
}

// Writes `text` to `path` under a temporary name, renamed when complete.
void write_file(const std::string& path, const std::string& text) {
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      fail(path, "cannot write");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, "cannot write (rename failed)");
  }
}

}  // namespace

std::vector<TaskAccuracy> eval_counts(const EvalConfig& cfg, const Checkpoint& model, const std::string& split,
                                      const std::vector<std::string>& tasks, Backend& backend, int rank, int size) {
  CM_ASSERT(size >= 1 && rank >= 0 && rank < size);
  const ArchModel arch = describe_model(cfg.arch, model);
  const std::unique_ptr<Forward> forward = make_forward(arch, backend);
  std::unordered_map<std::string, std::vector<float>> cache;  // every tensor is read (and converted) once
  const WeightSource weights = [&](const std::string& name) {
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, model.read(name)).first;
    return it->second;
  };
  const SafetensorsFile heads(cfg.heads);

  std::vector<TaskAccuracy> out;
  for (const std::string& task : tasks) {
    const int64_t hidden = forward->pooled_dim();
    const Head head = read_head(heads, task, hidden);
    const EvalSet set(cfg.data, task, split);
    for (int64_t i = 0; i < set.size(); ++i)
      if (set.labels()[i] < 0 || set.labels()[i] >= head.classes)
        fail(set.where(), "label " + std::to_string(set.labels()[i]) + " of exemplar " + std::to_string(i) +
                              " is outside the head's " + std::to_string(head.classes) + " classes");
    TaskAccuracy acc;
    acc.task = task;
    const int64_t batch = cfg.batch;
    const int64_t batches = (set.size() + batch - 1) / batch;
    std::vector<float> logits;
    for (int64_t b = rank; b < batches; b += size) {
      const int64_t first = b * batch;
      const int64_t count = std::min(batch, set.size() - first);
      const Exemplars x = set.batch(first, count);
      forward->check_input(x, set.where());
      const std::vector<float> pooled = forward->run(weights, x, nullptr);
      logits.assign(static_cast<size_t>(count * head.classes), 0.0f);
      backend.linear(pooled.data(), head.weight.data(), head.bias.data(), logits.data(), count, head.classes, hidden);
      for (int64_t i = 0; i < count; ++i) {
        const float* row = logits.data() + i * head.classes;
        int64_t best = 0;
        for (int64_t c = 1; c < head.classes; ++c)
          if (row[c] > row[best]) best = c;
        acc.correct += best == set.labels()[first + i] ? 1 : 0;
        acc.images += 1;
      }
    }
    out.push_back(acc);
  }
  return out;
}

int eval_command(const std::vector<std::string>& args, Communicator& comm) {
  const std::string usage =
      "eval: usage: catmerge eval CONFIG.yaml --model PATH [--split test|val] [--task NAME ...] [--out PREFIX] "
      "[--set key=value ...]";
  if (args.empty() || args[0].rfind("--", 0) == 0) throw Error(usage);
  std::string model_path, split = "test", prefix;
  std::vector<std::string> only, sets;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
      if (i + 1 >= args.size()) throw Error("eval: " + flag + " needs a value");
      return args[++i];
    };
    auto is = [&](const std::string& flag) { return a == flag || a.rfind(flag + "=", 0) == 0; };
    if (is("--model")) {
      model_path = value("--model");
    } else if (is("--split")) {
      split = value("--split");
    } else if (is("--task")) {
      only.push_back(value("--task"));
    } else if (is("--out")) {
      prefix = value("--out");
    } else if (is("--set")) {
      sets.push_back(value("--set"));
    } else {
      throw Error("eval: unexpected argument '" + a + "'\n" + usage);
    }
  }
  if (model_path.empty()) throw Error("eval: --model PATH is required (a merged .h5, an HF directory or .safetensors)");
  if (split != "test" && split != "val") throw Error("eval: --split must be test or val, got '" + split + "'");
  const EvalConfig cfg = load_eval_config(args[0], sets);
  std::vector<std::string> tasks = cfg.tasks;
  if (!only.empty()) {
    for (const auto& t : only)
      if (std::find(cfg.tasks.begin(), cfg.tasks.end(), t) == cfg.tasks.end())
        throw Error("eval: --task '" + t + "' is not a task of " + cfg.source);
    tasks = only;
  }
  if (prefix.empty()) prefix = default_prefix(model_path, split);

  const auto start = std::chrono::steady_clock::now();
  const std::unique_ptr<Checkpoint> model = open_checkpoint(model_path);
  const std::unique_ptr<Backend> backend = make_backend(cfg.backend, cfg.threads, cfg.source + ": runtime.backend");
  std::vector<TaskAccuracy> acc = eval_counts(cfg, *model, split, tasks, *backend, comm.rank(), comm.size());
  std::vector<uint64_t> counts;
  for (const auto& a : acc) {
    counts.push_back(a.images);
    counts.push_back(a.correct);
  }
  comm.sum(counts.data(), counts.size());
  for (size_t t = 0; t < acc.size(); ++t) {
    acc[t].images = counts[2 * t];
    acc[t].correct = counts[2 * t + 1];
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (comm.rank() != 0) return 0;

  double mean = 0.0;
  for (const auto& a : acc) mean += a.percent();
  mean /= static_cast<double>(acc.size());

  size_t width = 7;
  for (const auto& a : acc) width = std::max(width, a.task.size());
  std::ostringstream table;
  table << "catmerge eval: " << model_path << ", split " << split << ", " << acc.size() << " tasks, backend "
        << backend->name() << ", " << comm.size() << (comm.size() == 1 ? " rank" : " ranks") << ", " << fixed(seconds, 1)
        << " s\n";
  table << std::left << std::setw(static_cast<int>(width)) << "task" << std::right << std::setw(8) << "images"
        << std::setw(9) << "correct" << std::setw(10) << "accuracy" << "\n";
  for (const auto& a : acc)
    table << std::left << std::setw(static_cast<int>(width)) << a.task << std::right << std::setw(8) << a.images
          << std::setw(9) << a.correct << std::setw(10) << fixed(a.percent(), 2) << "\n";
  table << std::left << std::setw(static_cast<int>(width)) << "average" << std::right << std::setw(27) << fixed(mean, 2)
        << "\n";
  std::cout << table.str() << std::flush;

  std::ostringstream csv;
  csv << "task,split,images,correct,accuracy\n";
  for (const auto& a : acc)
    csv << a.task << "," << split << "," << a.images << "," << a.correct << "," << fixed(a.percent(), 4) << "\n";
  csv << "average," << split << ",,," << fixed(mean, 4) << "\n";
  nlohmann::json j;
  j["model"] = model_path;
  j["config"] = cfg.source;
  j["split"] = split;
  j["backend"] = backend->name();
  j["ranks"] = comm.size();
  j["seconds"] = seconds;
  j["tasks"] = nlohmann::json::array();
  for (const auto& a : acc)
    j["tasks"].push_back({{"task", a.task}, {"images", a.images}, {"correct", a.correct}, {"accuracy", a.percent()}});
  j["average"] = mean;
  write_file(prefix + ".csv", csv.str());
  write_file(prefix + ".json", j.dump(2) + "\n");
  std::cout << "catmerge eval: wrote " << prefix << ".csv and " << prefix << ".json\n";
  return 0;
}

}  // namespace cm
