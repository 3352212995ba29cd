// The array protocols of nnfast._cuda (array_protocols.cpp): what an object's CUDA
// array interface, DLPack capsule or PyTorch tensor says of its memory, and the
// device and stream of the call that uses it.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bind/arrays.h"

namespace nnfast::bind {

// What the array protocols say of one object, before it is accepted.
struct GpuArrayDescription {
  void* data = nullptr;
  char kind = 0;  // 'f' IEEE float, 'b' bfloat16, 'i' signed or 'u' unsigned integer, else unsupported
  int itemsize = 0;
  Shape shape;
  bool contiguous = true;
  bool readonly = false;
  bool requires_grad = false;  // a PyTorch tensor that autograd tracks
  int device = -1;
  bool device_from_pointer = false;  // the CUDA array interface names no device: ask the driver
  intptr_t producer_stream = 0;      // the stream a v3 interface names (0: none)
  py::object keep_alive;
  std::string dtype_text;  // for messages
};

// The storage dtype (call/dtype.h) of a described array, if the kernels have one
// for it: float32, float64, float16, bfloat16 or int16 (which dtypes an argument
// may hold is its caller's rule, as on the CPU).
bool storage_dtype(const GpuArrayDescription& d, DType& dtype);

// Puts the array on the call's device: the first non-empty array's device is the
// call's, every other must be on it (ValueError naming the argument). Then the
// call's stream waits for the array's producer stream, if it named one.
void use_device(const GpuArrayDescription& d, const ArgName& name);

}  // namespace nnfast::bind
