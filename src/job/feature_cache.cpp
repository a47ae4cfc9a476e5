#include "job/feature_cache.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/error.hpp"
#include "common/parallel.hpp"
#include "io/content_hash.hpp"
#include "io/h5.hpp"
#include "io/safetensors.hpp"
#include "io/temp_files.hpp"

namespace cm {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMarkName = "catmerge-features.json";
constexpr size_t kLongestName = 200;

std::string hex128_of(const std::string& text) { return digest_of(text.data(), text.size()); }

// "<path>.tmp-<host>-<pid>": unique among the processes of every node that shares the cache.
std::string temp_name(const std::string& path) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  for (char* c = host; *c; ++c)
    if (*c == '/') *c = '_';
  return path + ".tmp-" + host + "-" + std::to_string(getpid());
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec && !fs::is_directory(dir)) fail(dir, "cannot create the directory: " + ec.message());
}

// Writes `text` to `path` through a registered temporary, renamed when complete.
void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temp = temp_name(path);
  register_temp_file(temp);
  bool ok = false;
  {
    std::ofstream f(temp, std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.close();
    ok = static_cast<bool>(f);
  }
  const int e = errno;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : e);
    std::remove(temp.c_str());
    unregister_temp_file(temp);
    fail(path, "cannot write: " + why);
  }
  unregister_temp_file(temp);
}

// The SiteStats forms as the site files name them.
const char* kind_name(SiteKind k) { return k == SiteKind::NormInput ? "norm_input" : "linear_input"; }

const char* form_of(const SiteStats& s) {
  if (s.kind == SiteKind::NormInput) return "sqsum";
  return s.has_rows() ? "x" : "gram";
}

// XXH3-128 of the form's header and the values' bytes.
std::string checksum(SiteKind kind, const char* form, int64_t dim, int64_t rows, const void* data, size_t bytes) {
  XXH3_state_t* st = XXH3_createState();
  CM_ASSERT(st != nullptr);
  const std::string head = std::string(kind_name(kind)) + " " + form + " " + std::to_string(dim) + " " +
                           std::to_string(rows) + "\n";
  XXH3_128bits_reset(st);
  XXH3_128bits_update(st, head.data(), head.size());
  if (bytes > 0) XXH3_128bits_update(st, data, bytes);
  const XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  return digest_hex(h.high64, h.low64);
}

// --- HDF5 attributes -------------------------------------------------------------------------------------------

void write_string_attr(hid_t obj, const char* name, const std::string& value, const std::string& where) {
  const std::string what = std::string("cannot write attribute '") + name + "'";
  const h5::Id type = h5::check(H5Tcopy(H5T_C_S1), where, what);
  h5::check(H5Tset_size(type.get(), H5T_VARIABLE), where, what);
  h5::check(H5Tset_cset(type.get(), H5T_CSET_UTF8), where, what);
  const h5::Id space = h5::check(H5Screate(H5S_SCALAR), where, what);
  const h5::Id attr = h5::check(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where, what);
  const char* text = value.c_str();
  h5::check(H5Awrite(attr.get(), type.get(), &text), where, what);
}

void write_int_attr(hid_t obj, const char* name, int64_t value, const std::string& where) {
  const std::string what = std::string("cannot write attribute '") + name + "'";
  const h5::Id space = h5::check(H5Screate(H5S_SCALAR), where, what);
  const h5::Id attr =
      h5::check(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), where, what);
  h5::check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), where, what);
}

// A file whose contents are not what this cache writes (while readable): recomputed.
struct Damaged {};

std::optional<int64_t> int_attr(hid_t obj, const char* name, const std::string& where) {
  const htri_t exists = H5Aexists(obj, name);
  h5::check(static_cast<herr_t>(exists), where, std::string("cannot look up attribute '") + name + "'");
  if (exists == 0) return std::nullopt;
  const std::string what = std::string("cannot read attribute '") + name + "'";
  const h5::Id attr = h5::check(H5Aopen(obj, name, H5P_DEFAULT), where, what);
  const h5::Id type = h5::check(H5Aget_type(attr.get()), where, what);
  const h5::Id space = h5::check(H5Aget_space(attr.get()), where, what);
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1) return std::nullopt;
  int64_t v = 0;
  h5::check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), where, what);
  return v;
}

std::string need_string(hid_t obj, const char* name, const std::string& where) {
  const std::optional<std::string> v = h5::string_attr(obj, name, where);
  if (!v) throw Damaged{};
  return *v;
}

int64_t need_int(hid_t obj, const char* name, const std::string& where) {
  const std::optional<int64_t> v = int_attr(obj, name, where);
  if (!v) throw Damaged{};
  return *v;
}

// Reads dataset `name` (float32 or float64 as `want`, shape `shape`) into out.
template <class T>
void read_values(hid_t file, const char* name, h5::Storage want, const std::vector<int64_t>& shape,
                 std::vector<T>& out, const std::string& where) {
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  h5::check(static_cast<herr_t>(exists), where, std::string("cannot look up dataset '") + name + "'");
  if (exists == 0) throw Damaged{};
  const h5::Id ds = h5::check(H5Dopen2(file, name, H5P_DEFAULT), where, std::string("cannot open dataset '") + name + "'");
  if (h5::storage_of(ds.get(), where) != want || h5::shape_of(ds.get(), where) != shape) throw Damaged{};
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  out.assign(n, T{});
  if (n == 0) return;
  const hid_t mem = want == h5::Storage::F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
  h5::check(H5Dread(ds.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), where,
            std::string("cannot read dataset '") + name + "'");
}

[[noreturn]] void foreign(const std::string& path, const std::string& why) {
  fail(path, "not an entry of this cache (" + why + "): remove it, or name another features.cache");
}

// --- FeatureStore ----------------------------------------------------------------------------------------------

// --- inputs ----------------------------------------------------------------------------------------------------

std::string text_of(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* noun_of(const std::string& role) {
  if (role == "base") return "another base";
  if (role == "expert") return "another expert";
  if (role == "exemplars" || role == "group") return "other exemplars";
  if (role == "count") return "another exemplar count";
  if (role == "model") return "another feature model";
  if (role == "arch") return "another architecture";
  if (role == "backend") return "another backend";
  if (role == "format") return "another cache format";
  return "another input";
}

bool is_file_role(const std::string& role) { return role == "base" || role == "expert" || role == "exemplars"; }

const char* state_text(CachedSite s) {
  switch (s) {
    case CachedSite::Missing: return "is missing (an incomplete entry)";
    case CachedSite::Truncated: return "is truncated or unreadable";
    case CachedSite::Damaged: return "is damaged (its values do not match their checksum, or its shape the model's site)";
    default: return "";
  }
}

}  // namespace

// --- hashes ----------------------------------------------------------------------------------------------------

std::map<std::string, std::string> hash_feature_files(const JobConfig& cfg, const JobInputs& in,
                                                      const ShardPlan& plan, Communicator& comm) {
  struct File {
    std::string path;
    const SafetensorsFile* shard = nullptr;
    uint64_t size = 0, chunks = 0;
    size_t first_word = 0;
    int fd = -1;
  };
  std::vector<File> files;
  std::set<std::string> seen;
  // Files this process hashed already (for a sweep's next feature model), by path: the same on every rank, which
  // made the same calls (a path, not its modification time, which ranks on several nodes might see differently).
  static std::mutex memo_mutex;
  static std::map<std::string, std::string> memo;
  std::map<std::string, std::string> hashes;
  const auto add_path = [&](const std::string& path, const SafetensorsFile* shard) {
    if (!seen.insert(path).second) return;
    {
      const std::lock_guard<std::mutex> lock(memo_mutex);
      const auto it = memo.find(path);
      if (it != memo.end()) {
        hashes[path] = it->second;
        return;
      }
    }
    File f;
    f.path = path;
    f.shard = shard;
    if (shard) {
      f.size = shard->size();
    } else {
      std::error_code ec;
      f.size = fs::file_size(path, ec);
      if (ec) fail(path, "cannot read its size for hashing: " + ec.message());
    }
    f.chunks = (f.size + kHashChunkBytes - 1) / kHashChunkBytes;
    files.push_back(std::move(f));
  };
  const auto add = [&](const Checkpoint& ck) {
    std::unordered_map<std::string, const SafetensorsFile*> shards;
    for (const SafetensorsFile* s : ck.shards()) shards[s->path()] = s;
    for (const std::string& f : ck.files()) {
      const auto it = shards.find(f);
      add_path(f, it == shards.end() ? nullptr : it->second);
    }
  };
  add(in.base());
  for (size_t k = 0; k < in.num_experts(); ++k) {
    add(in.expert(k));
    if (!cfg.experts[k].exemplars_file.empty()) add_path(cfg.experts[k].exemplars_file, nullptr);
  }

  // A safetensors leaf belongs to the rank that owns the tensor holding its last byte (as io/provenance.hpp
  // assigns it, so that its later pass finds it done); any other file's leaves go round robin.
  std::unordered_map<std::string, int> owner;
  for (size_t r = 0; r < plan.ranks.size(); ++r)
    for (int t = plan.ranks[r].first_tensor; t < plan.ranks[r].end_tensor; ++t)
      owner[in.model().tensors[t].name] = static_cast<int>(r);
  const int rank = comm.rank(), ranks = comm.size();
  std::vector<std::pair<size_t, uint64_t>> mine;  // (file, leaf)
  std::vector<bool> reads(files.size(), false);   // a file this rank hashes leaves of with pread
  size_t words = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    File& f = files[i];
    f.first_word = words;
    words += 2 * f.chunks;
    for (uint64_t c = 0; c < f.chunks; ++c) {
      int who = static_cast<int>(c % static_cast<uint64_t>(ranks));
      if (f.shard) {
        const auto it = owner.find(f.shard->tensor_at(f.shard->digests().chunk_end(c) - 1));
        who = it == owner.end() ? 0 : it->second;
      }
      if (who != rank) continue;
      mine.emplace_back(i, c);
      reads[i] = !f.shard;
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    File& f = files[i];
    if (!reads[i]) continue;
    f.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) {
      const std::string why = std::strerror(errno);
      for (File& g : files)
        if (g.fd >= 0) ::close(g.fd);
      fail(f.path, "cannot open for hashing: " + why);
    }
  }
  std::vector<uint64_t> all(words, 0);
  const int workers = std::max(1, std::min<int>(cpu_threads(), static_cast<int>(mine.size())));
  std::vector<std::vector<unsigned char>> buf(static_cast<size_t>(workers));
  try {
    parallel_for(static_cast<int64_t>(mine.size()), workers, [&](int64_t j, int w) {
      const auto [i, c] = mine[static_cast<size_t>(j)];
      const File& f = files[i];
      uint64_t* out = &all[f.first_word + 2 * c];
      if (f.shard) {
        ChunkDigests& leaves = f.shard->digests();
        if (!leaves.done(c)) {
          leaves.hash(c, f.shard->bytes());
          f.shard->release_bytes(c * kHashChunkBytes, leaves.chunk_end(c) - c * kHashChunkBytes);
        }
        while (!leaves.done(c)) std::this_thread::yield();  // another thread's read is hashing it
        leaves.words(c, out);
        return;
      }
      const uint64_t begin = c * kHashChunkBytes, n = std::min(f.size, begin + kHashChunkBytes) - begin;
      std::vector<unsigned char>& b = buf[static_cast<size_t>(w)];
      b.resize(kHashChunkBytes);
      for (uint64_t got = 0; got < n;) {
        const ssize_t r = ::pread(f.fd, b.data() + got, n - got, static_cast<off_t>(begin + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) fail(f.path, std::string("read error while hashing: ") + (r < 0 ? std::strerror(errno) : "it got shorter"));
        got += static_cast<uint64_t>(r);
      }
      const XXH128_hash_t h = XXH3_128bits(b.data(), n);
      out[0] = h.high64;
      out[1] = h.low64;
    });
  } catch (...) {
    for (File& f : files)
      if (f.fd >= 0) ::close(f.fd);
    throw;
  }
  for (File& f : files)
    if (f.fd >= 0) ::close(f.fd);
  comm.sum(all.data(), all.size());

  for (const File& f : files) {
    const auto first = all.begin() + static_cast<std::ptrdiff_t>(f.first_word);
    hashes[f.path] = content_hash_root(std::vector<uint64_t>(first, first + static_cast<std::ptrdiff_t>(2 * f.chunks)));
  }
  const std::lock_guard<std::mutex> lock(memo_mutex);
  for (const File& f : files) memo[f.path] = hashes[f.path];
  return hashes;
}

// --- keys ------------------------------------------------------------------------------------------------------

std::vector<FeatureInput> feature_inputs_of(const JobConfig& cfg, const JobInputs& in, size_t k,
                                            const std::vector<double>& scales, const std::string& backend,
                                            const std::map<std::string, std::string>& hashes) {
  const auto hash = [&](const std::string& path) {
    const auto it = hashes.find(path);
    CM_ASSERT(it != hashes.end());
    return it->second;
  };
  const std::string at = "experts." + std::to_string(k);
  std::vector<FeatureInput> v;
  v.push_back({"format", "format", "", kFeatureCacheFormat});
  v.push_back({"arch", "model.arch", "", cfg.arch});
  for (const std::string& f : in.base().files()) v.push_back({"base", "model.base", f, hash(f)});
  for (const std::string& f : in.expert(k).files()) v.push_back({"expert", at + ".path", f, hash(f)});
  const ExpertConfig& e = cfg.experts[k];
  v.push_back({"exemplars", at + ".exemplars", e.exemplars_file, hash(e.exemplars_file)});
  v.push_back({"group", at + ".exemplars", "", e.exemplars_group});
  v.push_back({"count", "features.exemplars", "", std::to_string(cfg.exemplars)});
  v.push_back({"model", "features.model", "", scales.empty() ? "expert" : "scaled " + text_of(scales[k])});
  v.push_back({"backend", "runtime.backend", "", backend});
  return v;
}

std::string feature_key(const std::vector<FeatureInput>& inputs) {
  std::string text;
  for (const FeatureInput& i : inputs) text += i.role + '\t' + i.value + '\n';
  return hex128_of(text);
}

std::string describe_change(const std::vector<FeatureInput>& before, const std::vector<FeatureInput>& now) {
  std::vector<std::string> roles;
  for (const auto* list : {&now, &before})
    for (const FeatureInput& i : *list)
      if (std::find(roles.begin(), roles.end(), i.role) == roles.end()) roles.push_back(i.role);
  const auto of = [](const std::vector<FeatureInput>& list, const std::string& role) {
    std::vector<const FeatureInput*> out;
    for (const FeatureInput& i : list)
      if (i.role == role) out.push_back(&i);
    return out;
  };
  std::vector<std::string> nouns, details;
  for (const std::string& role : roles) {
    const auto b = of(before, role), n = of(now, role);
    std::string detail;
    const size_t common = std::min(b.size(), n.size());
    for (size_t i = 0; i < common && detail.empty(); ++i)
      if (b[i]->value != n[i]->value)
        detail = is_file_role(role) ? n[i]->what + ", " + n[i]->path + ": hash " + b[i]->value + " now " + n[i]->value
                                    : n[i]->what + ": " + b[i]->value + " now " + n[i]->value;
    if (detail.empty() && b.size() != n.size()) {
      const std::string what = n.empty() ? b[0]->what : n[0]->what;
      detail = is_file_role(role) ? what + ": " + std::to_string(b.size()) + " files now " + std::to_string(n.size())
                                  : what + ": " + (b.empty() ? "none" : b[0]->value) + " now " + (n.empty() ? "none" : n[0]->value);
    }
    if (detail.empty()) continue;
    const std::string noun = noun_of(role);
    if (std::find(nouns.begin(), nouns.end(), noun) == nouns.end()) nouns.push_back(noun);
    details.push_back(detail);
  }
  if (details.empty()) return "other inputs";
  std::string text;
  for (size_t i = 0; i < nouns.size(); ++i) text += (i ? " and " : "") + nouns[i];
  text += " (";
  for (size_t i = 0; i < details.size(); ++i) text += (i ? "; " : "") + details[i];
  return text + ")";
}

std::string cache_file_name(const std::string& name) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    const bool plain = std::isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain && c < 128) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (out.empty()) out = "%";  // "" (no byte): a name no other gives
  if (out.size() > kLongestName) out = "~" + hex128_of(name);
  return out;
}

// --- the cache directory ---------------------------------------------------------------------------------------

FeatureCache::FeatureCache(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string FeatureCache::entry_dir(const std::string& key) const { return dir_ + "/" + key; }

std::string FeatureCache::site_path(const std::string& key, const std::string& site) const {
  return entry_dir(key) + "/" + cache_file_name(site) + ".h5";
}

std::string FeatureCache::task_record_path(const std::string& task) const {
  return dir_ + "/tasks/" + cache_file_name(task) + ".json";
}

void FeatureCache::open_or_create() const {
  const std::string mark = dir_ + "/" + kMarkName;
  std::error_code ec;
  if (fs::exists(mark, ec)) return;
  if (fs::exists(dir_, ec)) {
    if (!fs::is_directory(dir_, ec)) fail(dir_, "features.cache: not a directory");
    if (!fs::is_empty(dir_, ec))
      fail(dir_, std::string("features.cache: not a catmerge feature cache (not empty, and no ") + kMarkName +
                     "): name a new or empty directory");
  }
  make_dirs(dir_);
  write_file_atomically(mark, nlohmann::json{{"format", kFeatureCacheFormat}, {"catmerge_version", CATMERGE_VERSION}}.dump() + "\n");
}

void FeatureCache::store(const std::string& key, const std::string& site, const std::string& task,
                         const SiteStats& s) const {
  const char* form = form_of(s);
  const void* data = nullptr;
  size_t bytes = 0;
  std::vector<int64_t> shape;
  hid_t file_type = H5T_IEEE_F64LE, mem_type = H5T_NATIVE_DOUBLE;
  if (s.kind == SiteKind::NormInput) {
    CM_ASSERT(s.sqsum.size() == static_cast<size_t>(s.dim));
    data = s.sqsum.data();
    bytes = s.sqsum.size() * sizeof(double);
    shape = {s.dim};
  } else if (s.has_rows()) {
    CM_ASSERT(s.x.size() == static_cast<size_t>(s.rows * s.dim));
    data = s.x.data();
    bytes = s.x.size() * sizeof(float);
    shape = {s.rows, s.dim};
    file_type = H5T_IEEE_F32LE;
    mem_type = H5T_NATIVE_FLOAT;
  } else {
    CM_ASSERT(s.gram.size() == static_cast<size_t>(s.dim * s.dim));
    data = s.gram.data();
    bytes = s.gram.size() * sizeof(double);
    shape = {s.dim, s.dim};
  }

  make_dirs(entry_dir(key));
  const std::string path = site_path(key, site), temp = temp_name(path);
  const std::string what = "cannot write " + temp;
  h5::silence_errors();
  register_temp_file(temp);
  try {
    {
      const h5::Id fcpl = h5::check(H5Pcreate(H5P_FILE_CREATE), path, what);
      h5::check(H5Pset_obj_track_times(fcpl.get(), false), path, what);
      h5::Id file = h5::check(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), path, what);
      {
        const h5::Id root = h5::check(H5Gopen2(file.get(), "/", H5P_DEFAULT), path, what);
        write_string_attr(root.get(), "format", kFeatureCacheFormat, path);
        write_string_attr(root.get(), "key", key, path);
        write_string_attr(root.get(), "site", site, path);
        write_string_attr(root.get(), "task", task, path);
        write_string_attr(root.get(), "catmerge_version", CATMERGE_VERSION, path);
        write_string_attr(root.get(), "kind", kind_name(s.kind), path);
        write_int_attr(root.get(), "dim", s.dim, path);
        write_int_attr(root.get(), "rows", s.rows, path);
        write_string_attr(root.get(), "checksum", checksum(s.kind, form, s.dim, s.rows, data, bytes), path);
        std::vector<hsize_t> dims(shape.begin(), shape.end());
        const h5::Id space = h5::check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), path, what);
        const h5::Id dcpl = h5::check(H5Pcreate(H5P_DATASET_CREATE), path, what);
        h5::check(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), path, what);
        h5::check(H5Pset_obj_track_times(dcpl.get(), false), path, what);
        const h5::Id ds =
            h5::check(H5Dcreate2(file.get(), form, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), path, what);
        if (bytes > 0) h5::check(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path, what);
      }
      h5::check(file.close(), path, what);
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) fail(path, "cannot rename " + temp + " to it: " + std::strerror(errno));
  } catch (...) {
    std::remove(temp.c_str());
    unregister_temp_file(temp);
    throw;
  }
  unregister_temp_file(temp);
}

CachedSite FeatureCache::load(const std::string& key, const std::string& site, const Site* expected,
                              SiteStats& out) const {
  std::error_code ec;
  if (!fs::is_directory(entry_dir(key), ec)) return CachedSite::NoEntry;
  const std::string path = site_path(key, site);
  if (!fs::exists(path, ec)) return CachedSite::Missing;
  {
    // HDF5's signature, else the file is no HDF5 file at all (a shorter one: cut short).
    static const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CachedSite::Truncated;
    const ssize_t n = ::pread(fd, head, sizeof head, 0);
    ::close(fd);
    if (n < static_cast<ssize_t>(sizeof head)) return CachedSite::Truncated;
    if (std::memcmp(head, kSignature, sizeof head) != 0) foreign(path, "not an HDF5 file");
  }
  h5::silence_errors();
  const h5::Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (file.get() < 0) {
    H5Eclear2(H5E_DEFAULT);
    return CachedSite::Truncated;
  }
  std::optional<std::string> format, file_key, file_site;
  try {
    format = h5::string_attr(file.get(), "format", path);
    file_key = h5::string_attr(file.get(), "key", path);
    file_site = h5::string_attr(file.get(), "site", path);
  } catch (const Error&) {
    return CachedSite::Truncated;
  }
  const std::string prefix = "catmerge-features-";
  if (!format) foreign(path, "an HDF5 file without catmerge's 'format' attribute");
  if (*format != kFeatureCacheFormat) {
    if (format->rfind(prefix, 0) == 0)
      foreign(path, "format " + *format + "; this catmerge writes " + kFeatureCacheFormat);
    foreign(path, "its format attribute is '" + *format + "'");
  }
  if (!file_key || *file_key != key)
    foreign(path, "its key is " + (file_key ? *file_key : std::string("absent")) + ", not " + key +
                      " where it lies");
  if (!file_site || *file_site != site)
    foreign(path, "it holds site '" + (file_site ? *file_site : std::string()) + "', not '" + site + "'");

  try {
    SiteStats s;
    const std::string kind = need_string(file.get(), "kind", path);
    if (kind != "linear_input" && kind != "norm_input") throw Damaged{};
    s.kind = kind == "norm_input" ? SiteKind::NormInput : SiteKind::LinearInput;
    s.dim = need_int(file.get(), "dim", path);
    s.rows = need_int(file.get(), "rows", path);
    const std::string sum = need_string(file.get(), "checksum", path);
    if (s.dim <= 0 || s.rows < 0 || (s.rows > 0 && s.dim > INT64_MAX / s.rows) || s.dim > (int64_t{1} << 31))
      throw Damaged{};
    if (expected && (expected->kind != s.kind || expected->dim != s.dim)) throw Damaged{};
    const void* data = nullptr;
    size_t bytes = 0;
    const char* form = nullptr;
    if (s.kind == SiteKind::NormInput) {
      form = "sqsum";
      read_values(file.get(), form, h5::Storage::F64, {s.dim}, s.sqsum, path);
      data = s.sqsum.data();
      bytes = s.sqsum.size() * sizeof(double);
    } else if (s.rows < s.dim) {
      form = "x";
      read_values(file.get(), form, h5::Storage::F32, {s.rows, s.dim}, s.x, path);
      data = s.x.data();
      bytes = s.x.size() * sizeof(float);
    } else {
      form = "gram";
      read_values(file.get(), form, h5::Storage::F64, {s.dim, s.dim}, s.gram, path);
      data = s.gram.data();
      bytes = s.gram.size() * sizeof(double);
    }
    if (checksum(s.kind, form, s.dim, s.rows, data, bytes) != sum) throw Damaged{};
    out = std::move(s);
    return CachedSite::Found;
  } catch (const Damaged&) {
    return CachedSite::Damaged;
  } catch (const Error&) {
    return CachedSite::Truncated;
  }
}

bool FeatureCache::read_task_record(const std::string& task, std::string& key, std::vector<FeatureInput>& inputs) const {
  std::ifstream f(task_record_path(task), std::ios::binary);
  if (!f) return false;
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    std::vector<FeatureInput> list;
    for (const nlohmann::json& i : j.at("inputs"))
      list.push_back({i.at("role").get<std::string>(), i.at("what").get<std::string>(),
                      i.value("path", std::string()), i.at("value").get<std::string>()});
    key = j.at("key").get<std::string>();
    inputs = std::move(list);
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

void FeatureCache::write_task_record(const std::string& task, const std::string& key,
                                     const std::vector<FeatureInput>& inputs) const {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const FeatureInput& i : inputs) {
    nlohmann::ordered_json e = {{"role", i.role}, {"what", i.what}};
    if (!i.path.empty()) e["path"] = i.path;
    e["value"] = i.value;
    list.push_back(std::move(e));
  }
  const nlohmann::ordered_json j = {{"format", kFeatureCacheFormat}, {"catmerge_version", CATMERGE_VERSION},
                                    {"task", task},                  {"key", key},
                                    {"entry", entry_dir(key)},      {"inputs", std::move(list)}};
  make_dirs(dir_ + "/tasks");
  write_file_atomically(task_record_path(task), j.dump(2) + "\n");
}

// --- the run's features ----------------------------------------------------------------------------------------

std::vector<FeatureStore> cached_features(const JobConfig& cfg, const FeatureInputs& fin, const JobInputs& in,
                                          Backend& backend, const std::vector<double>& scales, const ShardPlan& plan,
                                          Communicator& comm) {
  if (cfg.feature_cache.empty()) return collect_features(fin, in, backend, scales, plan, comm);
  const FeatureCache cache(cfg.feature_cache);
  const int rank = comm.rank();
  const size_t R = static_cast<size_t>(comm.size()), K = in.num_experts();
  if (rank == 0) cache.open_or_create();
  comm.barrier();

  const std::map<std::string, std::string> hashes = hash_feature_files(cfg, in, plan, comm);
  std::vector<std::vector<FeatureInput>> inputs;
  std::vector<std::string> keys;
  for (size_t k = 0; k < K; ++k) {
    inputs.push_back(feature_inputs_of(cfg, in, k, scales, backend.name(), hashes));
    keys.push_back(feature_key(inputs.back()));
  }

  // Each rank looks up its own sites: per task and rank, the state of the first one not found and its index in
  // the model's sites (+1), summed so that every rank sees every rank's.
  const ModelSpec& model = in.model();
  const std::vector<std::string> sites = feature_sites(model, plan.ranks[static_cast<size_t>(rank)]);
  const auto site_index = [&](const std::string& name) {
    for (size_t i = 0; i < model.sites.size(); ++i)
      if (model.sites[i].name == name) return static_cast<uint64_t>(i);
    CM_ASSERT(false);
    return uint64_t{0};
  };
  std::vector<FeatureStore> stores;
  std::vector<std::set<std::string>> found(K);
  std::vector<uint64_t> states(K * R * 2, 0);
  for (size_t k = 0; k < K; ++k) {
    stores.emplace_back(sites);
    for (const std::string& site : sites) {
      SiteStats s;
      const CachedSite state = cache.load(keys[k], site, model.site(site), s);
      if (state == CachedSite::Found) {
        stores[k].insert(site, std::move(s));
        found[k].insert(site);
        continue;
      }
      uint64_t* slot = &states[(k * R + static_cast<size_t>(rank)) * 2];
      if (slot[0] == 0) {
        slot[0] = static_cast<uint64_t>(state);
        slot[1] = site_index(site) + 1;
      }
      if (state == CachedSite::NoEntry) break;
    }
  }
  comm.sum(states.data(), states.size());
  std::vector<int> misses;
  for (size_t k = 0; k < K; ++k) {
    bool hit = true;
    for (size_t r = 0; r < R; ++r) hit &= states[(k * R + r) * 2] == 0;
    if (!hit) {
      misses.push_back(static_cast<int>(k));
      stores[k] = FeatureStore(sites);
    }
  }

  if (!misses.empty()) {
    std::vector<FeatureStore> computed = collect_features(fin, in, backend, scales, plan, comm, misses);
    for (int m : misses) {
      const size_t k = static_cast<size_t>(m);
      stores[k] = std::move(computed[k]);
      for (const std::string& site : sites) {
        const auto it = stores[k].sites().find(site);
        if (it != stores[k].sites().end() && !found[k].count(site))
          cache.store(keys[k], site, cfg.experts[k].name, it->second);
      }
    }
  }
  comm.barrier();  // every rank's entries are in place before rank 0 says so

  if (rank != 0) return stores;
  for (size_t k = 0; k < K; ++k) {
    const std::string& task = cfg.experts[k].name;
    const std::string entry = cache.entry_dir(keys[k]);
    std::string old_key;
    std::vector<FeatureInput> old_inputs;
    const bool recorded = cache.read_task_record(task, old_key, old_inputs);
    std::string what;
    if (std::binary_search(misses.begin(), misses.end(), static_cast<int>(k))) {
      size_t r = 0;
      while (states[(k * R + r) * 2] == 0) ++r;
      const auto state = static_cast<CachedSite>(states[(k * R + r) * 2]);
      const std::string& site = model.sites[static_cast<size_t>(states[(k * R + r) * 2 + 1] - 1)].name;
      if (state != CachedSite::NoEntry)
        what = cache.site_path(keys[k], site) + " " + state_text(state) + ": recomputed and stored in " + entry;
      else if (recorded && old_key != keys[k])
        what = "its entry was made from " + describe_change(old_inputs, inputs[k]) + ": recomputed and stored in " + entry;
      else
        what = "computed and stored in " + entry;
    } else {
      what = "reused (no forward pass) from " + entry;
    }
    const auto same = [](const FeatureInput& a, const FeatureInput& b) {
      return a.role == b.role && a.what == b.what && a.path == b.path && a.value == b.value;
    };
    if (!recorded || old_key != keys[k] ||
        !std::equal(old_inputs.begin(), old_inputs.end(), inputs[k].begin(), inputs[k].end(), same))
      cache.write_task_record(task, keys[k], inputs[k]);
    const std::string line = "catmerge: features.cache: task '" + task + "': " + what + "\n";
    std::fputs(line.c_str(), stderr);
  }
  std::fflush(stderr);
  return stores;
}

}  // namespace cm
