#include "job/eval_table.hpp"

#include <algorithm>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/text_file.hpp"

namespace cm {

namespace {

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

double average_accuracy(const std::vector<TaskAccuracy>& tasks) {
  double mean = 0.0;
  for (const auto& a : tasks) mean += a.percent();
  return mean / static_cast<double>(tasks.size());
}

std::string eval_table(const EvalReport& r) {
  size_t width = 7;
  for (const auto& a : r.tasks) width = std::max(width, a.task.size());
  const int w = static_cast<int>(width);
  std::ostringstream table;
  table << "catmerge eval: " << r.model << ", split " << r.split << ", " << r.tasks.size() << " tasks, backend "
        << r.backend << ", " << r.ranks << (r.ranks == 1 ? " rank" : " ranks") << ", " << fixed(r.seconds, 1) << " s, "
        << fixed(r.gflop_per_s, 1) << " GFLOP/s\n";
  table << std::left << std::setw(w) << "task" << std::right << std::setw(8) << "images" << std::setw(9) << "correct"
        << std::setw(10) << "accuracy" << "\n";
  for (const auto& a : r.tasks)
    table << std::left << std::setw(w) << a.task << std::right << std::setw(8) << a.images << std::setw(9) << a.correct
          << std::setw(10) << fixed(a.percent(), 2) << "\n";
  table << std::left << std::setw(w) << "average" << std::right << std::setw(27) << fixed(average_accuracy(r.tasks), 2)
        << "\n";
  return table.str();
}

std::string eval_csv(const EvalReport& r) {
  std::ostringstream csv;
  csv << "task,split,images,correct,accuracy\n";
  for (const auto& a : r.tasks)
    csv << a.task << "," << r.split << "," << a.images << "," << a.correct << "," << fixed(a.percent(), 4) << "\n";
  csv << "average," << r.split << ",,," << fixed(average_accuracy(r.tasks), 4) << "\n";
  return csv.str();
}

std::string eval_json(const EvalReport& r) {
  nlohmann::json j;
  j["model"] = r.model;
  j["config"] = r.config;
  j["split"] = r.split;
  j["backend"] = r.backend;
  j["ranks"] = r.ranks;
  j["seconds"] = r.seconds;
  j["tasks"] = nlohmann::json::array();
  for (const auto& a : r.tasks)
    j["tasks"].push_back({{"task", a.task}, {"images", a.images}, {"correct", a.correct}, {"accuracy", a.percent()}});
  j["average"] = average_accuracy(r.tasks);
  return j.dump(2) + "\n";
}

void write_eval_files(const EvalReport& report, const std::string& prefix) {
  write_text_files({{prefix + ".csv", eval_csv(report)}, {prefix + ".json", eval_json(report)}});
}

}  // namespace cm
