// The storage types of the arrays a call may hold, named once for every layer.
#pragma once

#include <cstdint>

namespace nnfast {

// float32/float64 compute in themselves; bfloat16 and float16 arrays are computed
// in float32 (converted on load, rounded once on store); int16 holds the low
// halves of float32 master weights beside bfloat16 parameters (see
// call/optimizer_call.h).
enum class DType : uint8_t { float32, float64, bfloat16, float16, int16 };

constexpr int64_t itemsize(DType d) {
  return d == DType::float64 ? 8 : d == DType::float32 ? 4 : 2;
}

constexpr const char* dtype_name(DType d) {
  switch (d) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::bfloat16: return "bfloat16";
    case DType::float16: return "float16";
    case DType::int16: return "int16";
  }
  return "?";
}

constexpr bool is_16bit_float(DType d) { return d == DType::bfloat16 || d == DType::float16; }

// The type a kernel over arrays of dtype d computes in: float64 for float64,
// float32 for every other floating dtype.
constexpr DType compute_dtype(DType d) { return d == DType::float64 ? DType::float64 : DType::float32; }

template <class S>
constexpr DType dtype_of() {
  return sizeof(S) == sizeof(double) ? DType::float64 : DType::float32;
}

}  // namespace nnfast
