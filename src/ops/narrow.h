// Rounding a host-side scalar (a hyperparameter, or a scalar derived from them in
// double) to the type a kernel computes in. A float32 kernel computes with float32
// scalars, so a value beyond float32's range would turn every update into inf or
// NaN (and converting it is undefined behaviour in C++): it is refused instead,
// before anything is written, with a std::domain_error that Python sees as a
// ValueError naming the argument. Host code only; shared by the CPU and CUDA drivers.
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace nnfast::ops {

// 2^128 - 2^103: the float32 rounding of a double is finite exactly below this
// magnitude (FLT_MAX plus half its ulp; the tie rounds to even, to infinity).
constexpr double kFloat32RoundsToInfinity = 0x1.ffffffp127;

// value rounded to S. name is the argument blamed; expression, if given, is how
// value was computed from the arguments.
template <class S>
S narrow(double value, const char* name, const char* expression = nullptr) {
  if constexpr (sizeof(S) < sizeof(double)) {
    if (std::isfinite(value) && !(std::fabs(value) < kFloat32RoundsToInfinity)) {
      std::ostringstream message;
      message.precision(8);
      message << name << ": " << (expression ? std::string(expression) + " = " : std::string())
              << value << " rounds to infinity in float32, the type this call computes in"
              << " (magnitude must be below 3.4028235e+38)";
      throw std::domain_error(message.str());
    }
  }
  return static_cast<S>(value);
}

}  // namespace nnfast::ops
