// The pybind11 module nnfast._core: NumPy arrays, run by the CPU drivers.
//
// Every operation is defined by bind/ops.h (shared with nnfast._cuda), which
// validates each whole call before anything is written. Here: the benchmark's
// roofline kernel and the module's own settings (threads, SIMD kernel sets).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind/numpy_backend.h"
#include "bind/ops.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/traffic.h"
#include "ops/narrow.h"

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

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast's C++ kernels (private; use the nnfast package)";
  bind_ops<NumpyBackend>(m);
  bind_benchmark(m);
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
