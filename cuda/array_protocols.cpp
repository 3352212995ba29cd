// The array protocols of nnfast._cuda: what the CUDA array interface (v2/v3), DLPack
// and PyTorch tensors say of a GPU array (GpuBackend::describe), and the device and
// stream a call runs on (use_device; GpuBackend::Call restores the caller's device).
#include "array_protocols.h"

#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <string>
#include <tuple>
#include <vector>

#include "gpu_backend.h"

namespace py = pybind11;

namespace nnfast::bind {

namespace {

// DLPack's C ABI (dlpack.h, v0.8; the unversioned capsule "dltensor").
struct DLDevice {
  int32_t device_type;  // 1 CPU, 2 CUDA, 3 CUDA pinned host, 13 CUDA managed
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null for C-contiguous
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};

constexpr int kDLCUDA = 2, kDLCUDAManaged = 13;
constexpr int kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4;

// Strides (in units of itemsize_unit) that lay the array out in C order; any for an
// empty array (libraries report all sorts for those) and for dimensions of size 1.
bool c_contiguous(const Shape& shape, const int64_t* strides, int64_t itemsize_unit) {
  if (!strides || element_count(shape) == 0) return true;
  int64_t expected = itemsize_unit;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

// A tuple of Python ints (a shape or strides) as int64s.
std::vector<int64_t> int64_tuple(const py::handle& tuple) {
  std::vector<int64_t> values;
  for (py::handle n : py::tuple(py::reinterpret_borrow<py::object>(tuple)))
    values.push_back(py::cast<int64_t>(n));
  return values;
}

[[noreturn]] void reject_host_array(py::handle obj, const ArgName& name) {
  throw py::value_error(name.str() + ": a host array (" + type_name(obj) +
                        ") in a call on GPU arrays; all arrays of one call must be on one device");
}

bool is_host_array(py::handle obj) {
  return py::hasattr(obj, "__array_interface__") || py::hasattr(obj, "__array__") ||
         py::hasattr(obj, "__dlpack__");
}

int device_of_pointer(const void* ptr, const ArgName& name) {
  cudaPointerAttributes attributes{};
  const cudaError_t error = cudaPointerGetAttributes(&attributes, ptr);
  if (error != cudaSuccess) {
    cudaGetLastError();
    throw py::value_error(name.str() + ": its pointer is not CUDA memory (" +
                          cudaGetErrorString(error) + ")");
  }
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
    throw py::value_error(name.str() + ": its __cuda_array_interface__ points to host memory");
  return attributes.device;
}

// Makes the call's stream wait for work a producer queued on its own stream
// (CUDA array interface v3: the consumer synchronizes with "stream").
void wait_for_stream(intptr_t producer) {
  if (cuda::stream_of(producer) == cuda::current_stream()) return;
  cudaEvent_t event;
  cuda::check(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  cuda::check(cudaEventRecord(event, cuda::stream_of(producer)), "cudaEventRecord");
  cuda::check(cudaStreamWaitEvent(cuda::current_stream(), event, 0), "cudaStreamWaitEvent");
  cudaEventDestroy(event);
}

GpuArrayDescription from_cuda_array_interface(const py::dict& cai, const ArgName& name) {
  for (const char* key : {"shape", "typestr", "data"})
    if (!cai.contains(key))
      throw py::type_error(name.str() + ": its __cuda_array_interface__ has no '" + key + "'");
  GpuArrayDescription d;
  const std::string typestr = py::cast<std::string>(cai["typestr"]);
  d.dtype_text = typestr;
  if (typestr.size() >= 3 && (typestr[0] == '<' || typestr[0] == '|' || typestr[0] == '=')) {
    d.kind = typestr[1];
    d.itemsize = std::stoi(typestr.substr(2));
  }
  const std::vector<int64_t> dims = int64_tuple(cai["shape"]);
  d.shape.assign(dims.data(), dims.size());
  const py::tuple data = cai["data"];
  d.data = reinterpret_cast<void*>(py::cast<uintptr_t>(data[0]));
  d.readonly = py::cast<bool>(data[1]);
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    const std::vector<int64_t> strides = int64_tuple(cai["strides"]);
    d.contiguous = c_contiguous(d.shape, strides.data(), d.itemsize);
  }
  if (cai.contains("mask") && !cai["mask"].is_none())
    throw py::value_error(name.str() + ": masked arrays are not supported");
  d.device_from_pointer = true;
  if (cai.contains("stream") && !cai["stream"].is_none()) {
    d.producer_stream = py::cast<intptr_t>(cai["stream"]);
    if (d.producer_stream == 0)
      throw py::value_error(name.str() + ": __cuda_array_interface__ stream 0 is disallowed by the interface");
  }
  return d;
}

GpuArrayDescription from_dlpack(py::handle obj, const ArgName& name) {
  const py::tuple device = obj.attr("__dlpack_device__")();
  const int device_type = py::cast<int>(device[0]);
  if (device_type != kDLCUDA && device_type != kDLCUDAManaged) reject_host_array(obj, name);
  const py::object capsule = obj.attr("__dlpack__")(py::arg("stream") = cuda::current_launch().stream);
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (!managed) throw py::error_already_set();
  // The capsule is consumed: its tensor is now ours to release.
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");
  GpuArrayDescription d;
  d.keep_alive = py::capsule(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  const DLTensor& t = managed->dl_tensor;
  if (t.dtype.lanes == 1) {
    const int code = t.dtype.code;
    d.kind = code == kDLFloat ? 'f' : code == kDLBfloat ? 'b' : code == kDLInt ? 'i' : code == kDLUInt ? 'u' : 0;
    d.itemsize = t.dtype.bits / 8;
  }
  d.dtype_text = "DLPack code " + std::to_string(t.dtype.code) + ", " + std::to_string(t.dtype.bits) + " bits";
  d.data = static_cast<char*>(t.data) + t.byte_offset;
  d.shape.assign(t.shape, static_cast<size_t>(t.ndim));
  d.contiguous = c_contiguous(d.shape, t.strides, 1);
  d.device = t.device.device_id;
  return d;
}


// PyTorch tensors, read through their own methods: the same facts as their CUDA
// array interface (which PyTorch builds in Python, ~4 us a tensor: 16 ms for the
// 4,000 arrays of a 1,000-tensor Adam step) at a fraction of the cost. Nothing of
// PyTorch is linked or imported: only a tensor's own type, when one is passed.
struct TorchTypes {
  py::object tensor, strided;
  struct Known {
    py::object dtype;
    char kind;
    int size;
  };
  std::vector<Known> dtypes;
};

// torch's types, once torch is fully imported (never freed: they live as long as torch).
const TorchTypes* loaded_torch_types() {
  static const TorchTypes* types = nullptr;
  if (types) return types;
  const py::dict modules = py::module_::import("sys").attr("modules");
  if (!modules.contains("torch")) return nullptr;
  const py::object torch = modules["torch"];
  // blocked (None) or still importing: not usable yet, and not cached
  if (torch.is_none() || !py::hasattr(torch, "Tensor") || !py::hasattr(torch, "float64"))
    return nullptr;
  auto* t = new TorchTypes{torch.attr("Tensor"), torch.attr("strided"), {}};
  for (const auto& [name, kind, size] :
       {std::make_tuple("float32", 'f', 4), std::make_tuple("float64", 'f', 8),
        std::make_tuple("float16", 'f', 2), std::make_tuple("bfloat16", 'b', 2),
        std::make_tuple("int32", 'i', 4), std::make_tuple("int64", 'i', 8),
        std::make_tuple("int16", 'i', 2), std::make_tuple("int8", 'i', 1),
        std::make_tuple("uint8", 'u', 1)})
    t->dtypes.push_back({torch.attr(name), kind, size});
  types = t;
  return types;
}

const TorchTypes* torch_types(py::handle obj) {
  const TorchTypes* types = loaded_torch_types();
  if (!types) return nullptr;
  const int is_tensor = PyObject_IsInstance(obj.ptr(), types->tensor.ptr());
  if (is_tensor < 0) throw py::error_already_set();
  return is_tensor ? types : nullptr;
}

GpuArrayDescription from_torch_tensor(py::handle obj, const TorchTypes& t, const ArgName& name) {
  if (!py::cast<bool>(obj.attr("is_cuda"))) reject_host_array(obj, name);
  const py::object layout = obj.attr("layout");
  if (!layout.is(t.strided))
    throw py::value_error(name.str() + ": a " + std::string(py::str(layout)) +
                          " tensor; the kernels take dense (strided) tensors");
  if (py::cast<bool>(obj.attr("is_neg")()))
    throw py::value_error(name.str() + ": a lazily negated view; call .resolve_neg() first");
  GpuArrayDescription d;
  const py::object dtype = obj.attr("dtype");
  for (const auto& k : t.dtypes)
    if (dtype.is(k.dtype)) d.kind = k.kind, d.itemsize = k.size;
  d.dtype_text = std::string(py::str(dtype));
  const std::vector<int64_t> dims = int64_tuple(obj.attr("shape"));
  d.shape.assign(dims.data(), dims.size());
  d.contiguous = py::cast<bool>(obj.attr("is_contiguous")());
  d.data = reinterpret_cast<void*>(py::cast<uintptr_t>(obj.attr("data_ptr")()));
  d.device = py::cast<int>(obj.attr("get_device")());
  // Written behind autograd's back, a tensor that requires grad would leave stale
  // saved values unnoticed (the CPU path refuses these too: .numpy() does).
  d.requires_grad = py::cast<bool>(obj.attr("requires_grad"));
  return d;
}

GpuArrayDescription describe_protocol(py::handle obj, const ArgName& name) {
  if (const TorchTypes* torch = torch_types(obj)) return from_torch_tensor(obj, *torch, name);
  // Read once: some libraries build the interface anew on every access.
  if (PyObject* cai = PyObject_GetAttrString(obj.ptr(), "__cuda_array_interface__")) {
    const py::object interface = py::reinterpret_steal<py::object>(cai);
    if (!PyDict_Check(cai))
      throw py::type_error(name.str() + ": its __cuda_array_interface__ is not a dict");
    return from_cuda_array_interface(py::reinterpret_borrow<py::dict>(interface), name);
  }
  if (!PyErr_ExceptionMatches(PyExc_AttributeError)) throw py::error_already_set();
  PyErr_Clear();  // no interface: DLPack, perhaps
  if (py::hasattr(obj, "__dlpack_device__") && py::hasattr(obj, "__dlpack__")) return from_dlpack(obj, name);
  if (is_host_array(obj)) reject_host_array(obj, name);
  throw py::type_error(name.str() + ": expected " + GpuBackend::kArrayKind + ", got " + type_name(obj));
}

}  // namespace

// (Checked after everything else about an array, as it may ask the driver.)
void use_device(const GpuArrayDescription& d, const ArgName& name) {
  if (element_count(d.shape) == 0) return;  // an empty array has no device to disagree with
  const int device = d.device_from_pointer ? device_of_pointer(d.data, name) : d.device;
  cuda::Launch& launch = cuda::current_launch();
  if (launch.device < 0) {
    cuda::check(cudaSetDevice(device), "cudaSetDevice");
    launch.device = device;
  } else if (device != launch.device) {
    throw py::value_error(name.str() + ": on cuda:" + std::to_string(device) +
                          ", but the call's other arrays are on cuda:" +
                          std::to_string(launch.device) + " (all arrays of one call on one device)");
  }
  if (d.producer_stream != 0) wait_for_stream(d.producer_stream);
}

bool storage_dtype(const GpuArrayDescription& d, DType& dtype) {
  if (d.kind == 'f' && d.itemsize == 4) dtype = DType::float32;
  else if (d.kind == 'f' && d.itemsize == 8) dtype = DType::float64;
  else if (d.kind == 'f' && d.itemsize == 2) dtype = DType::float16;
  else if (d.kind == 'b' && d.itemsize == 2) dtype = DType::bfloat16;
  else if (d.kind == 'i' && d.itemsize == 2) dtype = DType::int16;
  else return false;
  return true;
}

GpuBackend::Call::Call() {
  if (cudaGetDevice(&previous_device) != cudaSuccess) {
    previous_device = -1;
    cudaGetLastError();  // no driver: reported, if it matters, by the call's first CUDA use
  }
  cuda::current_launch().device = -1;
}

GpuBackend::Call::~Call() {
  if (previous_device >= 0) cudaSetDevice(previous_device);
}

bool GpuBackend::is_array(py::handle obj) {
  // The type first: an instance's interface may be a property that builds a dict.
  const py::handle type = py::type::of(obj);
  return py::hasattr(type, "__cuda_array_interface__") || py::hasattr(type, "__dlpack__") ||
         py::hasattr(obj, "__cuda_array_interface__");
}

// A protocol value of the wrong type (a shape of strings, a float device type...)
// is a TypeError naming the argument.
GpuArrayDescription GpuBackend::describe(py::handle obj, const ArgName& name) {
  try {
    return describe_protocol(obj, name);
  } catch (const py::cast_error& e) {
    throw py::type_error(name.str() + ": its array protocol holds a value of the wrong type (" +
                         e.what() + ")");
  } catch (const std::logic_error& e) {  // a typestr's item size that is not a number
    throw py::type_error(name.str() + ": its array protocol holds a malformed value (" +
                         e.what() + ")");
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_TypeError)) throw;
    throw py::type_error(name.str() + ": its array protocol holds a value of the wrong type (" +
                         std::string(py::str(e.value())) + ")");
  }
}

}  // namespace nnfast::bind
