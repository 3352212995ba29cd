// The pybind11 module nnfast._core: NumPy arrays, run by the CPU drivers.
//
// Every operation is defined by bind/ops.h and bind/gradients.h (shared with
// nnfast._cuda), which validate each whole call before anything is written. Here: the benchmark's
// roofline kernel, the module's own settings (threads, SIMD kernel sets), and
// private hooks that run the 16-bit conversions of the table in use on NumPy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bind/adafactor.h"
#include "bind/gradients.h"
#include "ops/norms.h"
#include "ops/optimizers/lamb.h"
#include "ops/optimizers/nadam.h"
#include "bind/numpy_backend.h"
#include "bind/ops.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/traffic.h"
#include "ops/narrow.h"
#include "ops/precision.h"

namespace py = pybind11;
using namespace nnfast;
using namespace nnfast::bind;

namespace {

// ---------------------------------------------------------------- benchmark

void bind_benchmark(py::module_& m) {
  m.def("memory_traffic", [](py::list reads, py::list updates, py::list outs) {
    // (Snapshots: checking an array may release the GIL, while the lists could change.)
    const py::tuple lists[] = {py::tuple(reads), py::tuple(updates), py::tuple(outs)};
    const int kind = cpu::traffic_kind(static_cast<int>(lists[0].size()),
                                       static_cast<int>(lists[1].size()),
                                       static_cast<int>(lists[2].size()));
    if (kind < 0)
      throw py::value_error("memory_traffic: no roofline kernel for " +
                            std::to_string(lists[0].size()) + " reads, " +
                            std::to_string(lists[1].size()) + " updates and " +
                            std::to_string(lists[2].size()) + " outs (src/cpu/traffic.h)");
    std::vector<Array> arrays;
    std::vector<ArgName> names;
    for (int l = 0; l < 3; ++l) {
      const char* prefix = l == 0 ? "reads" : l == 1 ? "updates" : "outs";
      for (size_t i = 0; i < lists[l].size(); ++i) {
        names.emplace_back(prefix, static_cast<int64_t>(i));
        arrays.push_back(NumpyBackend::check(lists[l][i], names.back(),
                                             l == 0 ? Access::read : Access::write));
        check_float32_or_64(arrays.back(), names.back());
        check_same_dtype(arrays.back(), arrays[0].dtype, names.back(), names[0]);
        check_shape(arrays.back(), arrays[0].shape, names.back(), names[0]);
      }
    }
    dispatch(arrays[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      std::vector<T*> operands;
      for (const Array& a : arrays) operands.push_back(a.ptr<T>());
      const int64_t n = arrays[0].size;
      without_gil_if_large(n, [&] { cpu::memory_traffic(kind, operands.data(), n); });
      return 0;
    });
  }, py::arg("reads"), py::arg("updates"), py::arg("outs"));
}


// ---------------------------------------------------------------- 16-bit conversions

// obj as a C-contiguous array of T (a copy if it is not contiguous): TypeError
// naming it unless it is an ndarray of exactly T's dtype (native byte order).
template <class T>
py::array_t<T> typed_array(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " + type_name(obj));
  if (!py::isinstance<py::array_t<T>>(obj))
    throw py::type_error(std::string(name) + ": dtype " +
                         std::string(py::str(py::reinterpret_borrow<py::array>(obj).dtype())) +
                         " is not supported; expected " + std::string(py::str(py::dtype::of<T>())));
  return py::array_t<T, py::array::c_style>::ensure(obj);
}

template <class T>
py::array_t<T> empty_like_shape(const py::array& like) {
  return py::array_t<T>(std::vector<py::ssize_t>(like.shape(), like.shape() + like.ndim()));
}

// "bfloat16" -> true, "float16" -> false, else ValueError naming the argument.
bool is_bfloat16(const std::string& dtype) {
  if (dtype == "bfloat16") return true;
  if (dtype == "float16") return false;
  throw py::value_error("dtype: expected 'bfloat16' or 'float16', got '" + dtype + "'");
}

// A Python or NumPy integer (not a bool) in [0, 2^64 - 1].
uint64_t uint64_arg(py::handle obj, const char* name) {
  PyObject* o = obj.ptr();
  if (PyBool_Check(o) || !(PyLong_Check(o) || is_numpy_instance(obj, "integer")))
    throw py::type_error(std::string(name) + ": expected an integer, got " + type_name(obj));
  const py::int_ integer(py::reinterpret_borrow<py::object>(obj));
  const unsigned long long value = PyLong_AsUnsignedLongLong(integer.ptr());
  if (value == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_OverflowError)) throw py::error_already_set();
    PyErr_Clear();
    throw py::value_error(std::string(name) + ": must lie in [0, 2**64 - 1], got " +
                          std::string(py::str(integer)));
  }
  return value;
}

// Exactly `count` integers in [0, 2^32 - 1] from a sequence.
std::vector<uint32_t> uint32_words(py::handle obj, const char* name, size_t count) {
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
    throw py::type_error(std::string(name) + ": expected a sequence of " + std::to_string(count) +
                         " integers, got " + type_name(obj));
  const py::sequence items = py::reinterpret_borrow<py::sequence>(obj);
  if (items.size() != count)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(count) +
                          " integers, got " + std::to_string(items.size()));
  std::vector<uint32_t> words;
  for (size_t i = 0; i < count; ++i) {
    const std::string item = std::string(name) + "[" + std::to_string(i) + "]";
    words.push_back(static_cast<uint32_t>(integer_arg(items[i], item.c_str(), 0, UINT32_MAX)));
  }
  return words;
}

void bind_precision(py::module_& m) {
  m.def("_widen", [](py::handle bits, const std::string& dtype) {
    const bool bf16 = is_bfloat16(dtype);
    const py::array_t<uint16_t> src = typed_array<uint16_t>(bits, "bits");
    py::array_t<float> out = empty_like_shape<float>(src);
    const cpu::PrecisionKernels& k = cpu::kernels().precision;
    (bf16 ? k.widen_bf16 : k.widen_half)(src.data(), out.mutable_data(), src.size());
    return out;
  }, "The float32 values of 16-bit encodings (uint16 array `bits`; dtype 'bfloat16' or\n"
     "'float16'), by the SIMD kernel set in use: exact, NaN made quiet with its sign and\n"
     "payload. Raises TypeError (bits not a uint16 ndarray) or ValueError (dtype).",
     py::arg("bits"), py::arg("dtype"));
  m.def("_narrow", [](py::handle x, const std::string& dtype, py::handle stochastic, py::handle seed,
                      py::handle step, py::handle tensor, py::handle first_element) {
    const bool bf16 = is_bfloat16(dtype);
    const py::array_t<float> src = typed_array<float>(x, "x");
    const bool random = bool_arg(stochastic, "stochastic");
    const ops::StochasticKey key{uint64_arg(seed, "seed"), uint64_arg(step, "step")};
    const auto tensor_index = static_cast<uint32_t>(integer_arg(tensor, "tensor", 0, UINT32_MAX));
    const int64_t first = integer_arg(first_element, "first_element", 0, INT64_MAX - src.size());
    py::array_t<uint16_t> out = empty_like_shape<uint16_t>(src);
    const cpu::PrecisionKernels& k = cpu::kernels().precision;
    if (random)
      (bf16 ? k.narrow_bf16_stochastic : k.narrow_half_stochastic)(
          src.data(), out.mutable_data(), src.size(), key, tensor_index, first);
    else
      (bf16 ? k.narrow_bf16 : k.narrow_half)(src.data(), out.mutable_data(), src.size());
    return out;
  }, "The 16-bit encodings (uint16) of float32 array `x` in dtype 'bfloat16' or 'float16',\n"
     "by the SIMD kernel set in use: rounded to nearest even, or with `stochastic` rounded\n"
     "away from zero iff floor(frac * 2**16) + r >= 2**16, r the 16 random bits of element\n"
     "first_element + i of tensor `tensor` for (seed, step) (ops/precision.h). Raises\n"
     "TypeError (x not a float32 ndarray, a non-integer or non-bool argument) or ValueError\n"
     "(dtype; seed, step outside [0, 2**64); tensor outside [0, 2**32); first_element < 0\n"
     "or first_element + x.size beyond int64).",
     py::arg("x"), py::arg("dtype"), py::arg("stochastic") = false, py::arg("seed") = 0,
     py::arg("step") = 1, py::arg("tensor") = 0, py::arg("first_element") = 0);
  m.def("_split_masters", [](py::handle x) {
    const py::array_t<float> src = typed_array<float>(x, "x");
    py::array_t<uint16_t> params = empty_like_shape<uint16_t>(src);
    py::array_t<int16_t> remainders = empty_like_shape<int16_t>(src);
    cpu::kernels().precision.split_masters(src.data(), params.mutable_data(),
                                           remainders.mutable_data(), src.size());
    return py::make_tuple(params, remainders);
  }, "(params uint16, remainders int16) of float32 array `x`: bits = encoding of x,\n"
     "params = (bits >> 16) + (bit 15 of bits) mod 2**16, remainders = the low 16 bits as\n"
     "int16. Raises TypeError (x not a float32 ndarray).", py::arg("x"));
  m.def("_join_masters", [](py::handle params, py::handle remainders) {
    const py::array_t<uint16_t> p = typed_array<uint16_t>(params, "params");
    const py::array_t<int16_t> r = typed_array<int16_t>(remainders, "remainders");
    if (!std::equal(p.shape(), p.shape() + p.ndim(), r.shape(), r.shape() + r.ndim()))
      throw py::value_error("remainders: shape " + std::string(py::str(r.attr("shape"))) +
                            " differs from the shape of params " +
                            std::string(py::str(p.attr("shape"))));
    py::array_t<float> out = empty_like_shape<float>(p);
    cpu::kernels().precision.join_masters(p.data(), r.data(), out.mutable_data(), p.size());
    return out;
  }, "The float32 masters of (params uint16, remainders int16): high = params - 1 mod\n"
     "2**16 where remainders < 0, else params; bits = high << 16 | uint16(remainders).\n"
     "Raises TypeError (dtypes) or ValueError (shapes differ).",
     py::arg("params"), py::arg("remainders"));
  m.def("_philox", [](py::handle counter, py::handle key) {
    const std::vector<uint32_t> c = uint32_words(counter, "counter", 4);
    const std::vector<uint32_t> k = uint32_words(key, "key", 2);
    const ops::Philox4 out = ops::philox4x32_10({{c[0], c[1], c[2], c[3]}}, k[0], k[1]);
    return py::make_tuple(out.v[0], out.v[1], out.v[2], out.v[3]);
  }, "Philox4x32-10 of a 128-bit counter (4 words) under a 64-bit key (2 words), all\n"
     "integers in [0, 2**32), as 4 words. Raises TypeError or ValueError naming the argument.",
     py::arg("counter"), py::arg("key"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast's C++ kernels (private; use the nnfast package)";
  bind_ops<NumpyBackend>(m);
  bind_adafactor<NumpyBackend>(m);
  bind_gradients<NumpyBackend>(m);
  bind_benchmark(m);
  bind_precision(m);
  m.def("set_num_threads", [](py::handle n) {
    cpu::set_num_threads(static_cast<int>(integer_arg(n, "n", 1, cpu::kMaxThreads)));
  }, py::arg("n"));
  // The scalar checks of the kernels, for Python-level objects (nnfast.optim, nnfast.torch).
  m.def("check_real", [](py::handle value, const char* name) { return real_arg(value, name); },
        py::arg("value"), py::arg("name"));
  m.def("check_real_float32",
        [](py::handle value, const char* name) {
          return ops::narrow<float>(real_arg(value, name), name);
        },
        py::arg("value"), py::arg("name"));
  m.def("check_nonnegative",
        [](py::handle value, const char* name) { return nonnegative_arg(value, name); },
        py::arg("value"), py::arg("name"));
  m.def("check_unit_interval", [](py::handle value, const char* name, bool include_one) {
    return unit_interval_arg(value, name, include_one);
  }, py::arg("value"), py::arg("name"), py::arg("include_one"));
  // clip_grad_norm_'s coefficient of a total norm (ops/norms.h), in float64 or float32:
  // what nnfast.torch's max_grad_norm folds into the step's grad_scale.
  m.def("clip_coefficient", [](double total, double max_norm, bool float64) {
    return float64 ? ops::clip_coefficient<double>(total, max_norm)
                   : static_cast<double>(ops::clip_coefficient<float>(total, max_norm));
  }, py::arg("total"), py::arg("max_norm"), py::arg("float64"));
  // LAMB's clip factor of a global gradient norm (ops/optimizers/lamb.h), for
  // nnfast.torch.LAMB's max_grad_norm.
  m.def("lamb_clip_factor", &ops::lamb_clip_factor, py::arg("global_norm"),
        py::arg("max_grad_norm"));
  // NAdam's momentum schedule mu_t (ops/optimizers/nadam.h), for the running product
  // mu_product that nnfast.optim and nnfast.torch keep as torch keeps it.
  m.def("nadam_momentum", &ops::nadam_momentum, py::arg("beta1"), py::arg("momentum_decay"),
        py::arg("step"));
  m.def("supported_simd", []() {
    std::vector<std::string> names;
    for (const cpu::KernelTable* t : cpu::supported_kernels()) names.emplace_back(t->isa);
    return names;
  });
  m.def("use_simd", &cpu::use_kernels, py::arg("isa"));
  m.def("is_gpu_array", [](py::handle obj) { return is_gpu_array(obj); }, py::arg("obj"));
  m.def("get_num_threads", &cpu::max_threads);
  m.attr("MAX_THREADS") = cpu::kMaxThreads;
  m.def("build_info", []() {
    py::dict d;
    d["version"] = NNFAST_VERSION;
    d["commit"] = NNFAST_COMMIT;
    d["simd"] = cpu::kernels().isa;
    d["compiler"] = __VERSION__;
    return d;
  });
}
