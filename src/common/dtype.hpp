#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm {

// Floating-point storage types catmerge reads and writes. Arithmetic is always float32 (METHODS.md).
enum class DType { F32, F16, BF16 };

const char* dtype_name(DType t);  // safetensors spelling: "F32", "F16", "BF16"
size_t dtype_size(DType t);
std::optional<DType> parse_dtype(std::string_view safetensors_name);

// Element-wise conversion of n elements (round to nearest even on the way down).
void to_f32(DType src, const void* in, float* out, size_t n);
void from_f32(DType dst, const float* in, void* out, size_t n);

// Name, dtype and shape of a stored tensor.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[3, 4]"

}  // namespace cm
