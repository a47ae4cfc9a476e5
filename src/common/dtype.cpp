#include "common/dtype.hpp"

#include <cstring>

#include "common/cpu_clones.hpp"
#include "common/error.hpp"
#include "dtype_convert.hpp"

namespace cm {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
  }
  return "?";
}

size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

std::optional<DType> parse_dtype(std::string_view s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return std::nullopt;
}

std::optional<DType> parse_user_dtype(std::string_view s) {
  if (s == "f32") return DType::F32;
  if (s == "f16") return DType::F16;
  if (s == "bf16") return DType::BF16;
  return std::nullopt;
}

CM_CPU_CLONES void to_f32(DType src, const void* in, float* out, size_t n) {
  if (n == 0) return;  // memcpy with a null pointer is undefined even for zero bytes
  if (src == DType::F32) {
    std::memcpy(out, in, n * sizeof(float));
    return;
  }
  const auto* h = static_cast<const uint16_t*>(in);
  if (src == DType::F16)
    for (size_t i = 0; i < n; ++i) out[i] = f16_to_float(h[i]);
  else
    for (size_t i = 0; i < n; ++i) out[i] = bf16_to_float(h[i]);
}

CM_CPU_CLONES void from_f32(DType dst, const float* in, void* out, size_t n) {
  if (n == 0) return;
  if (dst == DType::F32) {
    std::memcpy(out, in, n * sizeof(float));
    return;
  }
  auto* h = static_cast<uint16_t*>(out);
  if (dst == DType::F16)
    for (size_t i = 0; i < n; ++i) h[i] = float_to_f16(in[i]);
  else
    for (size_t i = 0; i < n; ++i) h[i] = float_to_bf16(in[i]);
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace cm
