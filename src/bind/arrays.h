// The arrays of one call, validated once, whatever library they come from.
//
// A backend (numpy_backend.h for nnfast._core, cuda/gpu_backend.h for
// nnfast._cuda) turns each Python object into an Array (pointer, dtype, shape,
// device), checking what only it can know (the array protocol, contiguity,
// writability, device). Everything else is checked here, for every backend
// alike: list lengths, equal dtypes and shapes, and written arrays that share
// memory with another array of the call.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <string>
#include <vector>

#include "bind/args.h"
#include "call/optimizer_call.h"
#include "call/tensor_list.h"

namespace nnfast::bind {

// The dimensions of an array, held inline up to kInline dimensions (the shapes
// of real calls), so that checking an array allocates nothing: every call
// checks every array, and a 1,000-element step costs about a microsecond.
class Shape {
 public:
  Shape() = default;
  Shape(const int64_t* dims, size_t ndim) { assign(dims, ndim); }
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.size()); }
  Shape(const Shape& other) { assign(other.begin(), other.size()); }
  Shape& operator=(const Shape& other) {
    if (this != &other) assign(other.begin(), other.size());
    return *this;
  }

  void assign(const int64_t* dims, size_t ndim) {
    ndim_ = ndim;
    if (ndim > kInline) heap_.assign(dims, dims + ndim);
    std::copy(dims, dims + std::min(ndim, kInline), inline_);
  }
  size_t size() const { return ndim_; }
  bool empty() const { return ndim_ == 0; }
  const int64_t* begin() const { return ndim_ > kInline ? heap_.data() : inline_; }
  const int64_t* end() const { return begin() + ndim_; }
  int64_t operator[](size_t d) const { return begin()[d]; }
  int64_t back() const { return begin()[ndim_ - 1]; }
  bool operator==(const Shape& other) const {
    return std::equal(begin(), end(), other.begin(), other.end());
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }

 private:
  static constexpr size_t kInline = 6;
  int64_t inline_[kInline] = {};
  std::vector<int64_t> heap_;
  size_t ndim_ = 0;
};

// A validated array of one of the dtypes of call/dtype.h: C-contiguous and aligned.
struct Array {
  py::object owner;       // the caller's object, or a copy of it: what an output returns
  py::object keep_alive;  // what else keeps the memory alive (a consumed DLPack capsule)
  void* data = nullptr;
  DType dtype = DType::float32;
  Shape shape;
  int64_t size = 0;  // elements

  int64_t nbytes() const { return size * itemsize(dtype); }
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
};

inline int64_t element_count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The dimensions as a Python tuple (for a library's array constructors).
inline py::tuple shape_tuple(const Shape& shape) {
  py::tuple dims(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) dims[i] = py::int_(shape[i]);
  return dims;
}

inline std::string describe_shape(const Shape& shape) {
  std::string s = "(";
  for (size_t d = 0; d < shape.size(); ++d) {
    s += std::to_string(shape[d]);
    if (shape.size() == 1 || d + 1 < shape.size()) s += d + 1 < shape.size() ? ", " : ",";
  }
  return s + ")";
}

inline void check_same_dtype(const Array& a, DType expected, const ArgName& name,
                             const ArgName& reference_name) {
  if (a.dtype != expected)
    throw py::type_error(name.str() + ": dtype " + dtype_name(a.dtype) + " differs from " +
                         reference_name.str() + "'s " + dtype_name(expected) +
                         " (all arrays of one call share one dtype)");
}

// Operations not yet given 16-bit storage take float32 and float64 only.
inline void check_float32_or_64(const Array& a, const ArgName& name) {
  if (a.dtype != DType::float32 && a.dtype != DType::float64)
    throw py::type_error(name.str() + ": dtype " + dtype_name(a.dtype) +
                         " is not supported here; expected float32 or float64");
}

// Activations and losses take float32 and float64, and bfloat16 and float16 where the
// backend's drivers take 16-bit storage (Backend::kSixteenBitStorage).
template <class Backend>
void check_floating(const Array& a, const ArgName& name) {
  constexpr bool half = Backend::kSixteenBitStorage;
  if (a.dtype == DType::float32 || a.dtype == DType::float64 || (half && is_16bit_float(a.dtype)))
    return;
  throw py::type_error(name.str() + ": dtype " + dtype_name(a.dtype) +
                       " is not supported here; expected " +
                       (half ? "float32, float64, bfloat16 or float16" : "float32 or float64"));
}

inline void check_shape(const Array& a, const Shape& expected, const ArgName& name,
                        const ArgName& reference_name) {
  if (a.shape != expected)
    throw py::value_error(name.str() + ": shape " + describe_shape(a.shape) + " differs from " +
                          reference_name.str() + "'s shape " + describe_shape(expected));
}

// An output may be one of the inputs itself (an in-place op) where allow_same is
// true, but never overlap an input partially: the kernels read each element
// before writing the same element only.
inline void check_overlap(const Array& out, const char* out_name, const Array& in,
                          const char* in_name, bool allow_same = true) {
  const char* o = static_cast<const char*>(out.data);
  const char* i = static_cast<const char*>(in.data);
  const int64_t on = out.nbytes(), in_bytes = in.nbytes();
  if (on == 0 || in_bytes == 0 || o >= i + in_bytes || i >= o + on) return;
  if (allow_same && o == i && on == in_bytes) return;
  throw py::value_error(std::string(out_name) + ": overlaps " + in_name +
                        (allow_same ? " partially (only the very same array is allowed)"
                                    : " (must be separate memory)"));
}

// One array or a list/tuple of them, as a sequence: a single array is a sequence
// of one, and a list is snapshotted into a tuple (holding references to its items)
// before anything is checked, so that nothing outside (another thread while NumPy
// copies an input with the GIL released, or an item's own Python code) can change
// what is validated and run.
struct ArraySequence {
  py::object items;  // a tuple, or the single array itself
  bool single = false;

  size_t size() const {
    return single ? 1 : static_cast<size_t>(PyTuple_GET_SIZE(items.ptr()));
  }
  py::handle operator[](size_t i) const {
    return single ? py::handle(items) : py::handle(PyTuple_GET_ITEM(items.ptr(), i));
  }
};

template <class Backend>
ArraySequence array_sequence(py::handle obj, const char* name) {
  if (PyTuple_Check(obj.ptr())) return {py::reinterpret_borrow<py::object>(obj), false};
  if (PyList_Check(obj.ptr())) {
    PyObject* snapshot = PyList_AsTuple(obj.ptr());
    if (!snapshot) throw py::error_already_set();
    return {py::reinterpret_steal<py::object>(snapshot), false};
  }
  if (Backend::is_array(obj)) return {py::reinterpret_borrow<py::object>(obj), true};
  throw py::type_error(std::string(name) + ": expected " + Backend::kArrayKind +
                       " or a list of them, got " + type_name(obj));
}

// One operand of a multi-tensor call: a list of arrays, one per parameter.
struct Operand {
  Operand(const char* n, py::handle l, Access a, bool may_be_absent = false)
      : name(n), list(py::reinterpret_borrow<py::object>(l)), access(a), optional(may_be_absent) {}
  const char* name;
  py::object list;
  Access access;
  bool optional;  // an optional state, absent when None

  bool absent() const { return optional && list.is_none(); }
};

// All arrays of a multi-tensor call, validated: operands[0] gives the count and the
// shapes every other operand must match (and the dtype, for a call of one dtype).
struct CheckedList {
  DType dtype = DType::float32;  // of operands[0]
  std::vector<std::array<Array, kOperandSlots>> arrays;  // per tensor; absent operands empty
  std::vector<int64_t> sizes;

  template <class T>
  TensorList<T> tensors() const {
    TensorList<T> t;
    t.sizes = sizes;
    t.operands.reserve(arrays.size());
    for (const auto& tensor : arrays) {
      std::array<T*, kMaxOperands> ptrs{};
      for (int k = 0; k < kMaxOperands; ++k) ptrs[k] = tensor[k].template ptr<T>();
      t.operands.push_back(ptrs);
    }
    return t;
  }
};

// No array that is written may share memory with any other array of the call
// (a tensor given twice, or a state given as its own gradient, would be updated
// twice, by racing threads): sorted by address, each array is compared with the
// furthest-reaching one before it.
inline void check_no_shared_memory(const CheckedList& c, const std::vector<Operand>& operands) {
  struct Span {
    const char* begin;
    const char* end;
    bool written;
    size_t tensor;
    size_t operand;
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < c.arrays.size(); ++i) {
    for (size_t k = 0; k < operands.size(); ++k) {
      const Array& a = c.arrays[i][k];
      if (!a.data || a.nbytes() == 0) continue;
      const char* begin = static_cast<const char*>(a.data);
      spans.push_back({begin, begin + a.nbytes(), operands[k].access == Access::write, i, k});
    }
  }
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.begin < y.begin; });
  const Span* reach = nullptr;
  for (const Span& s : spans) {
    if (reach && s.begin < reach->end && (s.written || reach->written)) {
      const Span& w = s.written ? s : *reach;
      const Span& other = s.written ? *reach : s;
      throw py::value_error(
          ArgName(operands[w.operand].name, static_cast<int64_t>(w.tensor)).str() +
          ": shares memory with " +
          ArgName(operands[other.operand].name, static_cast<int64_t>(other.tensor)).str() +
          " (an array that is updated must be separate from every other array of the call)");
    }
    if (!reach || s.end > reach->end) reach = &s;
  }
}

// one_dtype: every array has operands[0][0]'s dtype, a floating one (check_floating; else each
// operand's dtypes are left to the caller's rules: bind/optimizer.h).
template <class Backend>
CheckedList check_operands(const std::vector<Operand>& operands, bool one_dtype = true) {
  CheckedList out;
  std::array<ArraySequence, kOperandSlots> lists;
  for (size_t k = 0; k < operands.size(); ++k)
    if (!operands[k].absent()) lists[k] = array_sequence<Backend>(operands[k].list, operands[k].name);
  const size_t count = lists[0].size();
  for (size_t k = 1; k < operands.size(); ++k) {
    if (operands[k].absent() || lists[k].size() == count) continue;
    throw py::value_error(std::string(operands[k].name) + ": expected " + std::to_string(count) +
                          " arrays (one per entry of " + operands[0].name + "), got " +
                          std::to_string(lists[k].size()));
  }
  out.arrays.resize(count);
  out.sizes.resize(count);
  for (size_t i = 0; i < count; ++i) {
    for (size_t k = 0; k < operands.size(); ++k) {
      const Operand& op = operands[k];
      if (op.absent()) continue;
      const ArgName name(op.name, static_cast<int64_t>(i));
      Array a = Backend::check(lists[k][i], name, op.access);
      if (i == 0 && k == 0) out.dtype = a.dtype;
      if (one_dtype) {
        check_floating<Backend>(a, name);
        check_same_dtype(a, out.dtype, name, ArgName(operands[0].name, 0));
      }
      if (k > 0)
        check_shape(a, out.arrays[i][0].shape, name, ArgName(operands[0].name, static_cast<int64_t>(i)));
      out.arrays[i][k] = std::move(a);
    }
    out.sizes[i] = out.arrays[i][0].size;
  }
  check_no_shared_memory(out, operands);
  return out;
}

// An output array: the caller's (validated like the input it mirrors) or a new one
// of the input's own kind.
template <class Backend>
Array output_for(const py::object& given, const char* name, const Array& like,
                 const char* like_name, const Shape& shape) {
  if (given.is_none()) return Backend::empty(like, shape);
  Array out = Backend::check(given, name, Access::write);
  check_same_dtype(out, like.dtype, name, like_name);
  check_shape(out, shape, name, "the expected");
  return out;
}

template <class F>
auto dispatch(DType dtype, const F& f) {
  if (dtype == DType::float32) return f(float{});
  return f(double{});
}

// Runs work with the GIL released when it is large enough for other Python
// threads to gain from it; below that, releasing and retaking the GIL would cost
// more than the kernel itself.
constexpr int64_t kReleaseGilElements = 1 << 14;

template <class Work>
auto without_gil_if_large(int64_t elements, const Work& work) {
  if (elements < kReleaseGilElements) return work();
  py::gil_scoped_release release;
  return work();
}

// Runs kernel<T>(tensors) on the validated list of one dtype.
template <class Kernel>
void run_list(const CheckedList& checked, const Kernel& kernel) {
  dispatch(checked.dtype, [&](auto tag) {
    using T = decltype(tag);
    const TensorList<T> tensors = checked.tensors<T>();
    without_gil_if_large(tensors.total(), [&] { kernel(tensors); });
    return 0;
  });
}

}  // namespace nnfast::bind
