#include "job/eval_config.hpp"

#include <set>

#include "arch/registry.hpp"
#include "common/error.hpp"
#include "job/yaml_reader.hpp"

namespace cm {

EvalConfig load_eval_config(const std::string& file, const std::vector<std::string>& sets) {
  const YamlReader r(file, sets);
  const YAML::Node& root = r.root();

  EvalConfig c;
  c.source = file;
  const YAML::Node ev = root["eval"];
  if (!ev) fail(file, "eval: missing section (catmerge eval needs eval.heads and eval.data)");
  if (!ev.IsMap()) fail(file, "eval: expected a map of keys");
  r.known_keys(ev, "eval", {"heads", "data", "tasks", "batch"});
  if (!ev["heads"]) fail(file, "eval.heads: missing");
  if (!ev["data"]) fail(file, "eval.data: missing");
  c.heads = r.path(ev["heads"], "eval.heads");
  c.data = r.path(ev["data"], "eval.data");
  if (ev["batch"]) c.batch = r.integer(ev["batch"], "eval.batch", 1);

  if (const YAML::Node tasks = ev["tasks"]) {
    if (!tasks.IsSequence() || tasks.size() == 0) fail(file, "eval.tasks: expected a non-empty list of names");
    for (size_t i = 0; i < tasks.size(); ++i)
      c.tasks.push_back(r.text(tasks[i], "eval.tasks." + std::to_string(i)));
  } else {
    const YAML::Node experts = root["experts"];
    if (!experts || !experts.IsSequence() || experts.size() == 0)
      fail(file, "eval.tasks: missing, and there is no experts list to take the task names from");
    for (size_t i = 0; i < experts.size(); ++i) {
      const YAML::Node e = experts[i];
      const std::string at = "experts." + std::to_string(i);
      if (!e.IsMap()) fail(file, at + ": expected a map of keys");
      c.tasks.push_back(e["name"] ? r.text(e["name"], at + ".name") : "expert" + std::to_string(i));
    }
  }
  std::set<std::string> seen;
  for (const auto& t : c.tasks) {
    if (t.empty() || t.find('/') != std::string::npos) fail(file, "eval.tasks: '" + t + "' is not a valid task name");
    if (!seen.insert(t).second) fail(file, "eval.tasks: '" + t + "' is listed twice");
  }

  if (const YAML::Node model = root["model"]; model && model.IsMap()) {
    if (model["arch"]) c.arch = r.one_of(model["arch"], "model.arch", arch_names());
    if (model["base"]) c.base = r.path(model["base"], "model.base");
  }

  if (const YAML::Node rt = root["runtime"]) {
    if (!rt.IsMap()) fail(file, "runtime: expected a map of keys");
    if (rt["backend"]) c.backend = r.one_of(rt["backend"], "runtime.backend", {"auto", "cpu", "cuda"});
    if (rt["threads"]) c.threads = r.integer(rt["threads"], "runtime.threads", 0);
  }
  return c;
}

}  // namespace cm
