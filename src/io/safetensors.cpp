#include "io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_set>

#include "common/error.hpp"

namespace cm {

namespace {

using nlohmann::json;

// The header-length limit of the reference implementation (safetensors' MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string tensor(const std::string& name) { return "tensor '" + name + "'"; }

std::string offsets_string(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// One header entry, validated on its own; the layout of all entries is checked afterwards.
struct HeaderEntry {
  std::string name, dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

HeaderEntry parse_entry(const std::string& path, const std::string& name, const json& v) {
  const std::string where = tensor(name);
  if (!v.is_object()) fail(path, where + ": header entry is not a JSON object");
  HeaderEntry e;
  e.name = name;

  const auto dtype = v.find("dtype");
  if (dtype == v.end() || !dtype->is_string()) fail(path, where + ": missing or non-string 'dtype'");
  e.dtype = dtype->get<std::string>();
  const uint64_t elem = safetensors_element_size(e.dtype);
  if (elem == 0) fail(path, where + ": unknown dtype '" + e.dtype + "'");

  const auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array()) fail(path, where + ": missing or non-array 'shape'");
  uint64_t bytes = elem;
  bool overflow = false;
  for (const json& d : *shape) {
    if (!d.is_number_unsigned())
      fail(path, where + ": shape " + shape->dump() + " is not a list of non-negative integers");
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(path, where + ": shape " + shape->dump() + " has a dimension beyond int64");
    e.shape.push_back(static_cast<int64_t>(dim));
    overflow |= __builtin_mul_overflow(bytes, dim, &bytes);
  }
  // A zero dimension makes the product zero whatever overflowed on the way; without one, overflow
  // (even one that wrapped to zero) is an error.
  if (overflow && std::find(e.shape.begin(), e.shape.end(), 0) == e.shape.end())
    fail(path, where + ": shape " + shape->dump() + " of " + e.dtype + " overflows 64 bits of bytes");

  const auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail(path, where + ": 'data_offsets' is not a pair of non-negative integers");
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  if (e.begin > e.end)
    fail(path, where + ": data_offsets " + offsets_string(e.begin, e.end) + " end before they begin");
  if (e.end - e.begin != bytes)
    fail(path, where + ": shape " + shape_string(e.shape) + " of " + e.dtype + " needs " + std::to_string(bytes) +
                   " bytes but data_offsets " + offsets_string(e.begin, e.end) + " hold " +
                   std::to_string(e.end - e.begin));
  return e;
}

// Parses the header, rejecting a name given twice (nlohmann::json would silently keep the last).
json parse_json(const std::string& path, const char* text, size_t size) {
  std::unordered_set<std::string> names;
  const json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second)
      fail(path, tensor(parsed.get<std::string>()) + ": listed twice in the header");
    return true;
  };
  try {
    return json::parse(text, text + size, cb);
  } catch (const json::parse_error& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; the rest says where and why.
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    fail(path, "header is not valid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
  }
}

}  // namespace

uint64_t safetensors_element_size(const std::string& dtype) {
  static const std::unordered_map<std::string, uint64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2}, {"F16", 2},     {"BF16", 2},   {"U32", 4},
      {"I32", 4},  {"F32", 4}, {"F64", 8}, {"U64", 8}, {"I64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(path), digests_(map_.size()) {
  if (map_.size() < 8)
    fail(path_, "file is " + std::to_string(map_.size()) + " bytes, too short for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map_.data()[i];  // little-endian on any host
  if (n > kMaxHeaderBytes)
    fail(path_,
         "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > map_.size() - 8)
    fail(path_, "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(map_.size()) +
                    "-byte file (truncated?)");
  data_ = map_.data() + 8 + n;
  parse_header(reinterpret_cast<const char*>(map_.data() + 8), static_cast<size_t>(n));
}

void SafetensorsFile::parse_header(const char* text, size_t size) {
  const json header = parse_json(path_, text, size);
  if (!header.is_object()) fail(path_, "header is not a JSON object");

  std::vector<HeaderEntry> all;
  for (const auto& [name, v] : header.items()) {
    if (name != "__metadata__") {
      all.push_back(parse_entry(path_, name, v));
      continue;
    }
    if (!v.is_object()) fail(path_, "__metadata__ is not a JSON object");
    for (const auto& [key, value] : v.items()) {
      if (!value.is_string()) fail(path_, "__metadata__ entry '" + key + "' is not a string");
      metadata_[key] = value.get<std::string>();
    }
  }

  // The data must be exactly the tensors laid end to end: no gaps, no overlaps, nothing after.
  std::sort(all.begin(), all.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  const uint64_t data_size = map_.size() - static_cast<size_t>(data_ - map_.data());
  uint64_t expected = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry& e : all) {
    const std::string offsets = "data_offsets " + offsets_string(e.begin, e.end);
    if (e.begin < expected) fail(path_, tensor(e.name) + ": " + offsets + " overlap tensor '" + previous->name + "'");
    if (e.begin > expected)
      fail(path_, tensor(e.name) + ": " + offsets + " leave a gap of " + std::to_string(e.begin - expected) +
                      " bytes before it");
    if (e.end > data_size)
      fail(path_, tensor(e.name) + ": " + offsets + " run past the end of the data (" + std::to_string(data_size) +
                      " bytes; truncated file?)");
    expected = e.end;
    previous = &e;
  }
  if (expected != data_size)
    fail(path_, std::to_string(data_size - expected) + " trailing bytes after the last tensor's data");

  const uint64_t data_start = static_cast<uint64_t>(data_ - map_.data());
  for (const HeaderEntry& e : all) {
    if (e.end > e.begin) starts_.emplace_back(data_start + e.begin, e.name);
    if (const auto dtype = parse_dtype(e.dtype)) {
      entries_[e.name] = {true, tensors_.size(), e.begin, e.end - e.begin};
      tensors_.push_back({e.name, *dtype, e.shape});
    } else {
      entries_[e.name] = {false, others_.size(), e.begin, e.end - e.begin};
      others_.push_back({e.name, e.dtype, e.shape});
    }
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() || !it->second.is_float ? nullptr : &tensors_[it->second.index];
}

const SafetensorsFile::Entry& SafetensorsFile::float_entry(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, "no " + tensor(name));
  const Entry& entry = it->second;
  if (!entry.is_float)
    fail(path_, tensor(name) + " has dtype " + others_[entry.index].dtype +
                    ", which cannot be read as float (only F32, F16 and BF16 can)");
  return entry;
}

std::vector<float> SafetensorsFile::read(const std::string& name) const {
  const Entry& entry = float_entry(name);
  // From the byte count, not the shape: a zero dimension beside huge ones would overflow a product.
  const int64_t n = static_cast<int64_t>(entry.bytes / dtype_size(tensors_[entry.index].dtype));
  std::vector<float> out(static_cast<size_t>(n));
  read_into(name, 0, n, out.data());
  return out;
}

// Piece by piece along the file's hash chunks: each piece is converted, then the leaves it completes are
// hashed while its bytes are still in cache.
void SafetensorsFile::read_into(const std::string& name, int64_t first, int64_t count, float* out) const {
  const Entry& entry = float_entry(name);
  const DType dtype = tensors_[entry.index].dtype;
  const uint64_t esize = dtype_size(dtype);
  CM_ASSERT(first >= 0 && count >= 0 && static_cast<uint64_t>(first + count) * esize <= entry.bytes);
  const uint64_t data_start = static_cast<uint64_t>(data_ - map_.data());
  uint64_t at = data_start + entry.begin + static_cast<uint64_t>(first) * esize;
  const uint64_t end = at + static_cast<uint64_t>(count) * esize;
  std::vector<uint16_t> aligned;
  while (at < end) {
    // Up to the next chunk edge; an element across the edge (odd data offsets) goes with this piece.
    const uint64_t edge = std::min(end, (at / kHashChunkBytes + 1) * kHashChunkBytes);
    const size_t n = static_cast<size_t>(std::max<uint64_t>((edge - at) / esize, 1));
    const unsigned char* src = map_.data() + at;
    // The format does not align data; 16-bit values at an odd address are copied to aligned memory first.
    if (dtype != DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) != 0) {
      aligned.resize(n);
      std::memcpy(aligned.data(), src, n * sizeof(uint16_t));
      src = reinterpret_cast<const unsigned char*>(aligned.data());
    }
    to_f32(dtype, src, out, n);
    digests_.hash_ending_in(at, at + n * esize, map_.data());
    out += n;
    at += n * esize;
  }
}

void SafetensorsFile::read_stored(const std::string& name, uint64_t offset, uint64_t n, void* out) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, "no " + tensor(name));
  CM_ASSERT(offset + n <= it->second.bytes);
  const uint64_t at = static_cast<uint64_t>(data_ - map_.data()) + it->second.begin + offset;
  std::memcpy(out, map_.data() + at, n);
  digests_.hash_ending_in(at, at + n, map_.data());
}

void SafetensorsFile::will_need(const std::string& name) const {
  const Entry& e = float_entry(name);
  map_.will_need(static_cast<uint64_t>(data_ - map_.data()) + e.begin, e.bytes);
}

void SafetensorsFile::release(const std::string& name) const {
  const Entry& e = float_entry(name);
  map_.release(static_cast<uint64_t>(data_ - map_.data()) + e.begin, e.bytes);
}

const std::string& SafetensorsFile::tensor_at(uint64_t offset) const {
  static const std::string none;
  auto it = std::upper_bound(starts_.begin(), starts_.end(), offset,
                             [](uint64_t v, const std::pair<uint64_t, std::string>& s) { return v < s.first; });
  if (it == starts_.begin()) return none;
  --it;
  const Entry& e = entries_.at(it->second);
  const uint64_t begin = static_cast<uint64_t>(data_ - map_.data()) + e.begin;
  return offset < begin + e.bytes ? it->second : none;
}

}  // namespace cm
