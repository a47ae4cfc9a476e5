#include "io/safetensors_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "io/safetensors.hpp"

namespace cm {

namespace {

std::string shard_name(size_t i, size_t n) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i, n);
  return name;
}

void write_all(int fd, const void* data, size_t n, uint64_t at, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  for (size_t done = 0; done < n;) {
    const ssize_t w = ::pwrite(fd, p + done, n - done, static_cast<off_t>(at + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(path, std::string("cannot write: ") + strerror(w < 0 ? errno : EIO));
    done += static_cast<size_t>(w);
  }
}

}  // namespace

ShardLayout plan_shards(const std::vector<StoredTensor>& tensors, const std::vector<int>& part_of, int parts,
                        uint64_t shard_size) {
  CM_ASSERT(part_of.size() == tensors.size() && shard_size > 0);
  ShardLayout layout;
  for (int p = 0; p < parts; ++p) {
    bool open = false;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (part_of[i] != p) continue;
      if (!open || (layout.shards.back().bytes > 0 && layout.shards.back().bytes + tensors[i].bytes > shard_size)) {
        layout.shards.emplace_back();
        layout.shards.back().part = p;
        open = true;
      }
      layout.shards.back().tensors.push_back(i);
      layout.shards.back().bytes += tensors[i].bytes;
      layout.total_bytes += tensors[i].bytes;
    }
  }
  for (size_t s = 0; s < layout.shards.size(); ++s) {
    ShardLayout::Shard& shard = layout.shards[s];
    shard.file = shard_name(s + 1, layout.shards.size());
    // Falling element size keeps every tensor aligned to its own; ties stay in list order.
    std::stable_sort(shard.tensors.begin(), shard.tensors.end(), [&](size_t a, size_t b) {
      return safetensors_element_size(tensors[a].dtype) > safetensors_element_size(tensors[b].dtype);
    });
    uint64_t at = 0;
    for (size_t t : shard.tensors) {
      shard.begin.push_back(at);
      at += tensors[t].bytes;
    }
  }
  return layout;
}

std::string safetensors_header(const ShardLayout::Shard& shard, const std::vector<StoredTensor>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (size_t i = 0; i < shard.tensors.size(); ++i) {
    const StoredTensor& t = tensors[shard.tensors[i]];
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {shard.begin[i], shard.begin[i] + t.bytes}}};
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[static_cast<size_t>(b)] = static_cast<char>((json.size() >> (8 * b)) & 0xff);
  return out + json;
}

SafetensorsWriter::SafetensorsWriter(const std::string& dir, const ShardLayout& layout, int part,
                                     const std::vector<StoredTensor>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  try {
    for (const ShardLayout::Shard& shard : layout.shards) {
      if (shard.part != part) continue;
      const std::string path = dir + "/" + shard.file;
      const std::string header = safetensors_header(shard, tensors, metadata);
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) fail(path, std::string("cannot create: ") + strerror(errno));
      files_.push_back({path, fd});
      write_all(fd, header.data(), header.size(), 0, path);
      // The data's space, so that the file has its final size whatever order the writes come in.
      if (::ftruncate(fd, static_cast<off_t>(header.size() + shard.bytes)) != 0)
        fail(path, std::string("cannot size the file: ") + strerror(errno));
      for (size_t i = 0; i < shard.tensors.size(); ++i) {
        const StoredTensor& t = tensors[shard.tensors[i]];
        places_[t.name] = {files_.size() - 1, header.size() + shard.begin[i], t.bytes};
      }
    }
  } catch (const Error&) {
    // The destructor does not run for a throwing constructor.
    for (File& f : files_) {
      ::close(f.fd);
      std::remove(f.path.c_str());
    }
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  for (File& f : files_) {
    if (f.fd >= 0) ::close(f.fd);
    std::remove(f.path.c_str());
  }
}

void SafetensorsWriter::write_stored_bytes(const std::string& name, uint64_t offset, const void* bytes, size_t n) {
  const auto it = places_.find(name);
  CM_ASSERT(it != places_.end() && offset + n <= it->second.bytes);
  const File& f = files_[it->second.file];
  CM_ASSERT(f.fd >= 0);
  write_all(f.fd, bytes, n, it->second.at + offset, f.path);
}

void SafetensorsWriter::write_stored(const std::string& name, const void* bytes) {
  const auto it = places_.find(name);
  CM_ASSERT(it != places_.end());
  write_stored_bytes(name, 0, bytes, static_cast<size_t>(it->second.bytes));
}

void SafetensorsWriter::close() {
  for (File& f : files_) {
    const int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) fail(f.path, std::string("cannot write: ") + strerror(errno));
  }
  files_.clear();
}

}  // namespace cm
