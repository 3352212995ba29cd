// The backend of nnfast._cuda: arrays in GPU memory from any library, through the
// CUDA array interface (v2/v3) or DLPack, run by the CUDA drivers.
//
// Every array of a call must be on one device; the call runs there, queued on
// the stream set by use_stream() (the Python layer passes the producer's stream,
// or the framework's current one). A CUDA-array-interface v3 array that names
// another stream is waited for with an event, as the interface asks of a consumer.
#pragma once

#include <pybind11/pybind11.h>


#include "array_protocols.h"
#include "bind/arrays.h"
#include "drivers.h"
#include "launch.h"

namespace nnfast::bind {

struct GpuBackend : cuda::Drivers {
  static constexpr const char* kArrayKind =
      "a GPU array (with __cuda_array_interface__ or __dlpack__)";

  // Starts a call: no device yet; the caller's current device is restored after it.
  struct Call {
    Call();
    ~Call();
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    int previous_device = -1;
  };

  static bool is_array(py::handle obj);
  static GpuArrayDescription describe(py::handle obj, const ArgName& name);
  static Array check(py::handle obj, const ArgName& name, Access access);
  static Array empty(const Array& like, const Shape& shape);
  static Array zeros(const Array& like, const Shape& shape);
  static bool holds_integers(py::handle obj);
  static py::object class_ids(py::handle obj, int64_t rows, int64_t classes,
                              SoftmaxCrossEntropyOptions& o);
};

}  // namespace nnfast::bind
