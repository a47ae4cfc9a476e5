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

const char* dtype_name(DType t);        // safetensors spelling: "F32", "F16", "BF16"
const char* torch_dtype_name(DType t);  // torch's, as config.json's torch_dtype: "float32", "float16", "bfloat16"
size_t dtype_size(DType t);
std::optional<DType> parse_dtype(std::string_view safetensors_name);
// The names a user gives an output dtype: "f32", "f16", "bf16" (output.dtype, export --dtype).
std::optional<DType> parse_user_dtype(std::string_view name);

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

// A tensor of a dtype catmerge does not read as float (integers, BOOL, 8-bit floats, F64): listed so that
// inspection and error messages can still see it, and copied as it is stored into a safetensors output.
struct OtherTensorInfo {
  std::string name;
  std::string dtype;  // safetensors spelling, e.g. "I64"
  std::vector<int64_t> shape;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[3, 4]"

}  // namespace cm
