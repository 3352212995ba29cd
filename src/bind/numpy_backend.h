// The backend of nnfast._core: NumPy arrays in host memory, run by the CPU drivers.
#pragma once

#include <pybind11/numpy.h>

#include <string>
#include <vector>

#include "bind/arrays.h"
#include "cpu/drivers.h"

namespace nnfast::bind {

inline bool native_order(char order) {
  const uint16_t probe = 1;
  const bool little = *reinterpret_cast<const uint8_t*>(&probe) == 1;
  return order == '=' || order == '|' || order == (little ? '<' : '>');
}

// The device type an object's __dlpack_device__() names (kDLCUDA is 2), or -1 if
// it raises (a library that refuses to say has no GPU array to offer). An answer
// that is not a (device_type, device_id) pair of ints is a TypeError naming the
// argument, or -1 where no name is given.
inline int dlpack_device_type(py::handle obj, const ArgName* name) {
  py::object device;
  try {
    device = obj.attr("__dlpack_device__")();
  } catch (const py::error_already_set&) {
    return -1;
  }
  const bool pair = PyTuple_Check(device.ptr()) && PyTuple_GET_SIZE(device.ptr()) == 2 &&
                    PyLong_Check(PyTuple_GET_ITEM(device.ptr(), 0)) &&
                    PyLong_Check(PyTuple_GET_ITEM(device.ptr(), 1));
  if (!pair) {
    if (!name) return -1;
    throw py::type_error(name->str() + ": its __dlpack_device__() returned " +
                         std::string(py::repr(device)) +
                         ", not a (device_type, device_id) tuple of ints");
  }
  const long type = PyLong_AsLong(PyTuple_GET_ITEM(device.ptr(), 0));
  if (type == -1 && PyErr_Occurred()) PyErr_Clear();  // beyond long: no device type of DLPack
  return static_cast<int>(type == static_cast<int>(type) ? type : -1);
}

// An object another library placed in GPU memory: DLPack naming a CUDA device,
// or a CUDA array interface. The one definition: Python routes calls by it
// (nnfast._backend) and the CPU module names such arrays by it. DLPack is asked
// first: a PyTorch tensor builds its array interface in Python, at some cost. A
// malformed DLPack answer is no GPU array for routing (the module that gets the
// call then refuses it, naming the argument: name given).
inline bool is_gpu_array(py::handle obj, const ArgName* name = nullptr) {
  if (py::hasattr(py::type::of(obj), "__dlpack_device__")) {
    const int device_type = dlpack_device_type(obj, name);
    return device_type == 2 || device_type == 13;  // kDLCUDA, kDLCUDAManaged
  }
  return py::hasattr(obj, "__cuda_array_interface__");
}

struct NumpyBackend : cpu::Drivers {
  static constexpr const char* kArrayKind = "a numpy.ndarray";

  struct Call {
    Call() {}  // nothing per call on the CPU
  };

  static bool is_array(py::handle obj) {
    return py::isinstance<py::array>(obj) || is_numpy_instance(obj, "generic") ||
           is_host_dlpack(obj);
  }

  // An array of another library in host memory (a PyTorch CPU tensor): its
  // __dlpack_device__ names the CPU (kDLCPU, 1).
  static bool is_host_dlpack(py::handle obj) {
    return !py::isinstance<py::array>(obj) && py::hasattr(py::type::of(obj), "__dlpack_device__") &&
           dlpack_device_type(obj, nullptr) == 1;
  }

  // A host array of another library as an ndarray sharing its memory (DLPack, no
  // copy), under the rules of GPU arrays: one that autograd tracks is not written. A
  // bfloat16 tensor, which NumPy's DLPack import does not take, goes through its int16
  // bits (torch's view) and comes back as ml_dtypes.bfloat16.
  static py::array view_host_dlpack(py::handle obj, const ArgName& name, Access access) {
    if (access == Access::write && py::hasattr(obj, "requires_grad") &&
        py::cast<bool>(obj.attr("requires_grad")))
      throw py::value_error(name.str() + ": a tensor that requires grad cannot be written outside "
                            "autograd; pass tensor.detach() (and bump its version if autograd saved it)");
    const bool bf16 = py::hasattr(obj, "dtype") && std::string(py::str(obj.attr("dtype"))) == "torch.bfloat16";
    const py::object source = bf16 ? obj.attr("view")(py::module_::import("torch").attr("int16"))
                                   : py::reinterpret_borrow<py::object>(obj);
    py::array a = py::module_::import("numpy").attr("from_dlpack")(source);
    return bf16 ? py::array(a.attr("view")(bfloat16_type())) : a;
  }

  static py::array require_ndarray(py::handle obj, const ArgName& name, Access access) {
    if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
    if (is_host_dlpack(obj)) return view_host_dlpack(obj, name, access);
    if (is_gpu_array(obj, &name))
      throw py::value_error(name.str() + ": a GPU array (" + type_name(obj) +
                            ") in a call on host arrays; all arrays of one call must be on one device");
    throw py::type_error(name.str() + ": expected a numpy.ndarray, got " + type_name(obj));
  }

  // An ndarray of a dtype of call/dtype.h (float32, float64, float16, int16, or
  // ml_dtypes.bfloat16) in native byte order; written arrays must be C-contiguous,
  // aligned and writeable; other inputs are copied when they are not. An input that
  // is only read may also be a NumPy scalar (what arithmetic on 0-d arrays returns).
  // Which dtypes an argument may hold is the caller's rule. (Descriptor fields are
  // read directly: this runs for every array of every call.)
  static Array check(py::handle obj, const ArgName& name, Access access) {
    // (No default-constructed py::array: pybind11 would allocate an empty array.)
    py::array a = access == Access::read && !py::isinstance<py::array>(obj) &&
                          is_numpy_instance(obj, "generic")
                      ? py::array(py::module_::import("numpy").attr("asarray")(obj))
                      : require_ndarray(obj, name, access);
    namespace npy = py::detail;
    const auto* descr = npy::array_descriptor_proxy(npy::array_proxy(a.ptr())->descr);
    DType dtype;
    if (!dtype_of_descriptor(descr->type_num, descr->typeobj, dtype) || !native_order(descr->byteorder))
      throw py::type_error(name.str() + ": dtype " + std::string(py::str(a.dtype())) +
                           " is not supported; expected float32, float64, bfloat16 or float16");
    const int flags = npy::array_proxy(a.ptr())->flags;
    const bool usable = (flags & npy::npy_api::NPY_ARRAY_C_CONTIGUOUS_) &&
                        (flags & npy::npy_api::NPY_ARRAY_ALIGNED_);
    if (access == Access::write) {
      if (!usable)
        throw py::value_error(name.str() + ": must be C-contiguous and aligned to be written in place");
      if (!(flags & npy::npy_api::NPY_ARRAY_WRITEABLE_))
        throw py::value_error(name.str() + ": array is read-only");
    } else if (!usable) {
      a = py::module_::import("numpy").attr("array")(a, py::arg("order") = "C");  // an aligned copy
    }
    return wrap(std::move(a), dtype);
  }

  // The dtype of a NumPy descriptor (type number and scalar type), if nnfast has it.
  static bool dtype_of_descriptor(int type_num, PyObject* scalar_type, DType& dtype) {
    namespace npy = py::detail;
    constexpr int kNpyHalf = 23;  // NPY_HALF, which pybind11 does not name
    switch (type_num) {
      case npy::npy_api::NPY_FLOAT_: dtype = DType::float32; return true;
      case npy::npy_api::NPY_DOUBLE_: dtype = DType::float64; return true;
      case kNpyHalf: dtype = DType::float16; return true;
      case npy::npy_api::NPY_SHORT_: dtype = DType::int16; return true;
      default: break;
    }
    // bfloat16 is ml_dtypes' user-defined dtype: known by its scalar type.
    if (type_num >= 256 && scalar_type == bfloat16_type().ptr()) {
      dtype = DType::bfloat16;
      return true;
    }
    return false;
  }

  // ml_dtypes.bfloat16 (imported on the first array of a user-defined dtype).
  static py::handle bfloat16_type() {
    static py::object type = py::module_::import("ml_dtypes").attr("bfloat16");
    return type;
  }

  // The NumPy dtype of d.
  static py::object numpy_dtype(DType d) {
    if (d == DType::bfloat16) return py::module_::import("numpy").attr("dtype")(bfloat16_type());
    return py::module_::import("numpy").attr("dtype")(dtype_name(d));
  }

  static Array empty(const Array& like, const Shape& shape) {
    const std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    return wrap(py::array(py::dtype::from_args(numpy_dtype(like.dtype)), dims), like.dtype);
  }

  // (numpy.zeros: zero pages from the OS, so a large one costs nothing until touched.)
  static Array zeros(const Array& like, const Shape& shape) {
    return wrap(py::module_::import("numpy").attr("zeros")(shape_tuple(shape), numpy_dtype(like.dtype)),
                like.dtype);
  }

  // An ndarray of dtype d, as an Array.
  static Array wrap(py::array a, DType d) {
    Array out;
    out.dtype = d;
    out.data = const_cast<void*>(a.data());  // read-only inputs are never written
    static_assert(sizeof(py::ssize_t) == sizeof(int64_t), "numpy dimensions are 64-bit here");
    out.shape.assign(reinterpret_cast<const int64_t*>(a.shape()), static_cast<size_t>(a.ndim()));
    out.size = a.size();
    out.owner = std::move(a);
    return out;
  }

  // Class ids: an integer ndarray, or a host array of another library (a PyTorch CPU
  // tensor) that holds integers, read through its ndarray view.
  static bool holds_integers(py::handle obj) {
    if (!py::isinstance<py::array>(obj) && !is_host_dlpack(obj)) return false;
    const char kind = require_ndarray(obj, "target", Access::read).dtype().kind();
    return kind == 'i' || kind == 'u';
  }

  // Class ids of shape (rows,) as a private int64 copy (uint64 ids past 2^63 must
  // not wrap), each in [0, classes) or equal to ignore_index; sets o.rows.labels
  // and o.counted_rows.
  static py::object class_ids(py::handle obj, int64_t rows, int64_t classes,
                              SoftmaxCrossEntropyOptions& o) {
    py::array target = require_ndarray(obj, "target", Access::read);
    if (target.ndim() != 1 || target.shape(0) != rows)
      throw py::value_error("target: class ids must have shape (" + std::to_string(rows) +
                            ",), got " +
                            describe_shape(Shape(reinterpret_cast<const int64_t*>(target.shape()),
                                                 static_cast<size_t>(target.ndim()))));
    const py::module_ np = py::module_::import("numpy");
    if (target.dtype().kind() == 'u' && target.itemsize() == 8 && rows > 0 &&
        py::cast<bool>(np.attr("any")(target.attr("__gt__")(py::int_(INT64_MAX)))))
      throw py::value_error("target: class ids must lie in [0, " + std::to_string(classes) +
                            "), got a uint64 id above 2^63 - 1");
    py::array ids = np.attr("array")(target, "int64");
    const int64_t* labels = static_cast<const int64_t*>(ids.data());
    o.counted_rows = 0;
    for (int64_t r = 0; r < rows; ++r) {
      if (o.rows.has_ignore_index && labels[r] == o.rows.ignore_index) continue;
      if (labels[r] < 0 || labels[r] >= classes)
        throw py::value_error("target[" + std::to_string(r) + "] = " + std::to_string(labels[r]) +
                              " is outside [0, " + std::to_string(classes) + ")");
      ++o.counted_rows;
    }
    o.rows.labels = labels;
    return std::move(ids);
  }
};

}  // namespace nnfast::bind
