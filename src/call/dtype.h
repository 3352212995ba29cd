// The storage types of the arrays a call may hold, named once for every layer.
#pragma once

#include <cstdint>
#include <type_traits>

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

// The machine epsilon of a floating dtype (the spacing of its values at 1), as
// torch.finfo(dtype).eps gives it.
constexpr double machine_epsilon(DType d) {
  switch (d) {
    case DType::float64: return 0x1p-52;
    case DType::float32: return 0x1p-23;
    case DType::bfloat16: return 0x1p-7;
    case DType::float16: return 0x1p-10;
    case DType::int16: break;
  }
  return 0.0;
}

// The type a kernel over arrays of dtype d computes in: float64 for float64,
// float32 for every other floating dtype.
constexpr DType compute_dtype(DType d) { return d == DType::float64 ? DType::float64 : DType::float32; }

// The element types of bfloat16 and float16 arrays as the kernels see them: 16 bits
// each, never computed in (a kernel over them computes in float32, converting on
// load and rounding to nearest even once on store). Drivers and kernels are
// instantiated for them beside float and double.
struct Bfloat16 {
  uint16_t bits;
};
struct Float16 {
  uint16_t bits;
};

template <class S>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<S, Bfloat16>) return DType::bfloat16;
  else if constexpr (std::is_same_v<S, Float16>) return DType::float16;
  else return sizeof(S) == sizeof(double) ? DType::float64 : DType::float32;
}

// Whether S is the element type of a bfloat16 or float16 array.
template <class S>
constexpr bool is_16bit_storage = is_16bit_float(dtype_of<S>());

// The type a kernel over elements of type S computes in (compute_dtype, as a type).
template <class S>
using ComputeType = std::conditional_t<std::is_same_v<S, double>, double, float>;

}  // namespace nnfast
