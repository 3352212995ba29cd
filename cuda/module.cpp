// The pybind11 module nnfast._cuda: GPU arrays, run by the CUDA drivers.
//
// Every operation is defined by src/bind/ops.h, src/bind/gradients.h and
// src/bind/adafactor.h, shared with nnfast._core. Here:
// the checks of a GPU array (its protocols are read by array_protocols.cpp), new
// arrays of the caller's own library, and class ids on the device.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bind/adafactor.h"
#include "bind/gradients.h"
#include "bind/ops.h"
#include "gpu_backend.h"

namespace py = pybind11;

namespace nnfast::bind {

Array GpuBackend::check(py::handle obj, const ArgName& name, Access access) {
  GpuArrayDescription d = describe(obj, name);
  DType dtype;
  if (!storage_dtype(d, dtype))
    throw py::type_error(name.str() + ": dtype " + d.dtype_text +
                         " is not supported; expected float32, float64, bfloat16 or float16");
  if (!d.contiguous) throw py::value_error(name.str() + ": must be C-contiguous");
  if (reinterpret_cast<uintptr_t>(d.data) % d.itemsize != 0)
    throw py::value_error(name.str() + ": must be aligned to its element size");
  if (access == Access::write && d.readonly) throw py::value_error(name.str() + ": array is read-only");
  if (access == Access::write && d.requires_grad)
    throw py::value_error(name.str() + ": a tensor that requires grad cannot be written outside "
                          "autograd; pass tensor.detach() (and bump its version if autograd saved it)");
  use_device(d, name);
  Array a;
  a.owner = py::reinterpret_borrow<py::object>(obj);
  a.keep_alive = std::move(d.keep_alive);
  a.data = d.data;
  a.dtype = dtype;
  a.shape = d.shape;
  a.size = element_count(d.shape);
  return a;
}

namespace {

// A new array of like's library, dtype and device: kind "empty" or "zeros".
Array new_like(const Array& like, const Shape& shape, const char* kind) {
  const py::object out =
      py::module_::import("nnfast.cuda").attr("_new_like")(like.owner, shape_tuple(shape), kind);
  return GpuBackend::check(out, "a new output", Access::write);
}

}  // namespace

Array GpuBackend::empty(const Array& like, const Shape& shape) { return new_like(like, shape, "empty"); }

Array GpuBackend::zeros(const Array& like, const Shape& shape) { return new_like(like, shape, "zeros"); }

bool GpuBackend::holds_integers(py::handle obj) {
  if (!is_array(obj)) return false;
  const char kind = describe(obj, "target").kind;
  return kind == 'i' || kind == 'u';
}

py::object GpuBackend::class_ids(py::handle obj, int64_t rows, int64_t classes,
                                 SoftmaxCrossEntropyOptions& o) {
  const GpuArrayDescription d = describe(obj, "target");
  if (d.shape.size() != 1 || d.shape[0] != rows)
    throw py::value_error("target: class ids must have shape (" + std::to_string(rows) + ",), got " +
                          describe_shape(d.shape));
  if (d.kind != 'i' || (d.itemsize != 4 && d.itemsize != 8))
    throw py::type_error("target: class ids on the GPU must be int32 or int64, got " + d.dtype_text);
  if (!d.contiguous) throw py::value_error("target: must be C-contiguous");
  if (reinterpret_cast<uintptr_t>(d.data) % d.itemsize != 0)
    throw py::value_error("target: must be aligned to its element size");
  use_device(d, "target");
  // A private int64 copy in stream-ordered memory, freed (after the kernels that
  // read it, in stream order) when the returned owner is released.
  auto* ids = new cuda::DeviceBuffer<int64_t>(rows);
  py::capsule owner(ids, [](void* p) { delete static_cast<cuda::DeviceBuffer<int64_t>*>(p); });
  o.counted_rows = d.itemsize == 4
                       ? cuda::check_class_ids(static_cast<const int32_t*>(d.data), ids->get(), rows, classes, o.rows)
                       : cuda::check_class_ids(static_cast<const int64_t*>(d.data), ids->get(), rows, classes, o.rows);
  o.rows.labels = ids->get();
  return std::move(owner);
}

}  // namespace nnfast::bind

PYBIND11_MODULE(_cuda, m) {
  using namespace nnfast;
  m.doc() = "nnfast's CUDA kernels (private; use the nnfast package with GPU arrays)";
  bind::bind_ops<bind::GpuBackend>(m);
  bind::bind_gradients<bind::GpuBackend>(m);
  bind::bind_adafactor<bind::GpuBackend>(m);
  m.def("device_count", &cuda::device_count);
  m.def("use_stream", [](intptr_t stream) { cuda::current_launch().stream = stream; },
        "The stream (1 legacy default, 2 per-thread default, else a cudaStream_t) of this "
        "thread's next calls.");
  m.def("build_info", []() {
    py::dict d;
    d["cuda_runtime"] = CUDART_VERSION;
    d["architectures"] = NNFAST_CUDA_ARCHITECTURES;
    return d;
  });
}
