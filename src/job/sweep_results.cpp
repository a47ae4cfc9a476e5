#include "job/sweep_results.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "common/error.hpp"
#include "io/text_file.hpp"
#include "job/resume.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

nlohmann::json to_json(const PointScore& s, const SweepPoint& p) {
  nlohmann::json tasks = nlohmann::json::array();
  for (const TaskAccuracy& a : s.tasks)
    tasks.push_back({{"task", a.task}, {"images", a.images}, {"correct", a.correct}, {"accuracy", a.percent()}});
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, v] : p.params) {
    const nlohmann::json parsed = nlohmann::json::parse(v, nullptr, false);
    params[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
  }
  return {{"point", s.point},    {"method", p.method}, {"name", p.name}, {"setting", p.setting},
          {"params", params},    {"split", s.split},   {"tasks", tasks},
          {"average", s.tasks.empty() ? nlohmann::json() : nlohmann::json(s.average())},
          {"merge_seconds", s.merge_seconds}, {"eval_seconds", s.eval_seconds}, {"gflops", s.gflops}};
}

PointScore from_json(const nlohmann::json& j, const std::string& where) {
  PointScore s;
  try {
    s.point = j.at("point").get<int>();
    s.split = j.at("split").get<std::string>();
    for (const auto& t : j.at("tasks"))
      s.tasks.push_back({t.at("task").get<std::string>(), t.at("images").get<uint64_t>(), t.at("correct").get<uint64_t>()});
    s.merge_seconds = j.at("merge_seconds").get<double>();
    s.eval_seconds = j.at("eval_seconds").get<double>();
    s.gflops = j.at("gflops").get<double>();
  } catch (const nlohmann::json::exception& e) {
    fail(where, std::string("not a point of a sweep's journal (") + e.what() + ")");
  }
  return s;
}

}  // namespace

double PointScore::average() const {
  double sum = 0;
  for (const TaskAccuracy& a : tasks) sum += a.percent();
  return tasks.empty() ? 0.0 : sum / static_cast<double>(tasks.size());
}

double PointScore::metric(const std::string& metric) const {
  if (metric == "average") return average();
  for (const TaskAccuracy& a : tasks)
    if (a.task == metric) return a.percent();
  fail("sweep.select.metric", "'" + metric + "' is neither 'average' nor a task of the eval");
}

SweepJournal::SweepJournal(const SweepConfig& sweep, const JobConfig& cfg, Communicator& comm)
    : sweep_(sweep), comm_(comm), scores_(sweep.points.size()) {
  const std::string key = job_key(cfg, sweep.key_text);
  const std::string key_file = sweep.dir + "/sweep.json";
  if (comm.rank() == 0) {
    std::error_code ec;
    fs::create_directories(sweep.dir + "/points", ec);
    if (ec) fail(sweep.dir, "cannot create the sweep's folder: " + ec.message());
    if (std::ifstream in(key_file); in) {
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (!j.is_object() || j.value("key", "") != key)
        fail(key_file, "holds the journal of another sweep (other grids, inputs, features or eval); remove " +
                           sweep.dir + " or set sweep.dir");
    } else {
      write_text_file(key_file, nlohmann::json{{"key", key}, {"points", sweep.points.size()}, {"config", cfg.source}}
                                        .dump(2) + "\n");
    }
  }
  // Rank 0's view of which points are scored, for every rank: parts of a Slurm array may add entries meanwhile,
  // and every rank must score the same points.
  std::vector<uint64_t> scored(sweep.points.size(), 0);
  if (comm.rank() == 0)
    for (const SweepPoint& p : sweep.points) scored[static_cast<size_t>(p.index)] = fs::exists(file_of(p.index)) ? 1 : 0;
  comm.sum(scored.data(), scored.size());
  for (const SweepPoint& p : sweep.points) {
    if (!scored[static_cast<size_t>(p.index)]) continue;
    const std::string path = file_of(p.index);
    std::ifstream in(path);
    if (!in) fail(path, "cannot read this journal entry");
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) fail(path, "not valid JSON (a journal entry is written whole: remove it to score the point again)");
    if (j.value("method", "") != p.method || j.value("setting", "") != p.setting)
      fail(path, "is not point " + std::to_string(p.index) + " (" + p.method + " " + p.setting + ") of this sweep");
    scores_[static_cast<size_t>(p.index)] = from_json(j, path);
  }
}

std::string SweepJournal::file_of(int point) const { return sweep_.dir + "/points/" + std::to_string(point) + ".json"; }

void SweepJournal::record(const PointScore& score) {
  if (comm_.rank() == 0)
    write_text_file(file_of(score.point), to_json(score, sweep_.points[static_cast<size_t>(score.point)]).dump(2) + "\n");
  scores_[static_cast<size_t>(score.point)] = score;
}

std::vector<int> chosen_per_name(const SweepConfig& sweep, const SweepJournal& journal) {
  std::vector<std::string> order;
  std::map<std::string, int> best;
  for (const SweepPoint& p : sweep.points) {
    const std::optional<PointScore>& s = journal.at(p.index);
    CM_ASSERT(s.has_value());
    if (!best.count(p.name)) {
      order.push_back(p.name);
      best[p.name] = p.index;
    } else if (s->metric(sweep.select_metric) > journal.at(best[p.name])->metric(sweep.select_metric)) {
      best[p.name] = p.index;
    }
  }
  std::vector<int> chosen;
  for (const std::string& m : order) chosen.push_back(best[m]);
  return chosen;
}

namespace {

// The `alpha` value of a point and its setting without it; false when it has no alpha.
bool split_alpha(const SweepPoint& p, double* alpha, std::string* rest) {
  const auto it = p.params.find("alpha");
  if (it == p.params.end()) return false;
  *alpha = std::stod(it->second);
  std::string r;
  for (const auto& [k, v] : p.params)
    if (k != "alpha") r += (r.empty() ? "" : " ") + k + "=" + v;
  *rest = r.empty() ? p.name : p.name + " " + r;
  return true;
}

void plot_alpha(const SweepConfig& sweep, const SweepJournal& journal) {
  std::map<std::string, std::map<std::string, std::vector<std::pair<double, double>>>> curves;  // method, line
  for (const SweepPoint& p : sweep.points) {
    double alpha = 0;
    std::string line;
    if (split_alpha(p, &alpha, &line))
      curves[p.name][line].emplace_back(alpha, journal.at(p.index)->metric(sweep.select_metric));
  }
  if (curves.empty()) return;
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "catmerge sweep: gnuplot is not installed: no alpha plots\n");
    return;
  }
  for (const auto& [method, lines] : curves) {
    std::ostringstream data, script;
    const std::string png = sweep.dir + "/alpha-" + method + ".png";
    script << "set terminal pngcairo size 900,560 font \"sans,10\"\nset output \"" << png << ".tmp\"\n"
           << "set title \"" << method << ": " << sweep.select_split << " " << sweep.select_metric
           << " against alpha\"\nset xlabel \"alpha\"\nset ylabel \"accuracy (%)\"\nset grid\nset key bottom left\n"
           << "plot ";
    int block = 0;
    for (const auto& [line, xy] : lines) {
      for (const auto& [x, y] : xy) data << x << " " << y << "\n";
      data << "\n\n";
      script << (block ? ", " : "") << "'-' using 1:2 with linespoints lw 2 title \"" << line << "\"";
      ++block;
    }
    script << "\n";
    for (const auto& [line, xy] : lines) {
      for (const auto& [x, y] : xy) script << x << " " << y << "\n";
      script << "e\n";
    }
    FILE* gp = popen("gnuplot", "w");
    if (!gp) continue;
    std::fputs(script.str().c_str(), gp);
    if (pclose(gp) != 0 || std::rename((png + ".tmp").c_str(), png.c_str()) != 0) {
      std::remove((png + ".tmp").c_str());
      std::fprintf(stderr, "catmerge sweep: gnuplot failed: no %s\n", png.c_str());
    }
  }
}

}  // namespace

void write_sweep_results(const SweepConfig& sweep, const SweepJournal& journal, const std::vector<int>& chosen,
                         const std::vector<PointScore>& tests, int selected, const std::vector<std::string>& tasks) {
  std::ostringstream csv;
  csv << "point,method,setting,split";
  for (const std::string& t : tasks) csv << "," << t;
  csv << (tasks.empty() ? "" : ",average") << ",chosen\n";
  const auto row = [&](const SweepPoint& p, const PointScore& s) {
    csv << p.index << "," << p.method << "," << p.setting << "," << s.split;
    for (const TaskAccuracy& a : s.tasks) csv << "," << fixed(a.percent(), 4);
    if (!s.tasks.empty()) csv << "," << fixed(s.average(), 4);
    const bool is_chosen = std::find(chosen.begin(), chosen.end(), p.index) != chosen.end();
    csv << "," << (p.index == selected ? "selected" : is_chosen ? "method" : "") << "\n";
  };
  nlohmann::json j;
  j["select"] = {{"split", sweep.select_split}, {"metric", sweep.select_metric}};
  j["selected"] = selected >= 0 ? nlohmann::json(selected) : nlohmann::json();
  j["chosen"] = chosen;
  j["points"] = nlohmann::json::array();
  for (const SweepPoint& p : sweep.points) {
    row(p, *journal.at(p.index));
    j["points"].push_back(to_json(*journal.at(p.index), p));
  }
  j["test"] = nlohmann::json::array();
  for (const PointScore& s : tests) {
    row(sweep.points[static_cast<size_t>(s.point)], s);
    j["test"].push_back(to_json(s, sweep.points[static_cast<size_t>(s.point)]));
  }
  write_text_files({{sweep.dir + "/results.csv", csv.str()}, {sweep.dir + "/results.json", j.dump(2) + "\n"}});
  if (!tasks.empty()) plot_alpha(sweep, journal);
}

}  // namespace cm
