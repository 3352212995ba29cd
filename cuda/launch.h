// Where the CUDA drivers of one call run: the device of its arrays and the
// stream the work is queued on, set per call by the nnfast._cuda bindings
// (gpu_backend.h) before any driver runs and read by every driver; and the
// host-side helpers of the drivers (errors, scratch memory, copies back).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nnfast::cuda {

struct Launch {
  int device = -1;
  // The stream as the array protocols number it: 1 the legacy default stream,
  // 2 the per-thread default stream, otherwise a cudaStream_t.
  intptr_t stream = 1;
};

// The launch of the call running on this thread.
Launch& current_launch();

// The number of usable CUDA devices: 0 without a driver or device (never throws).
int device_count();

// Raises RuntimeError naming `what` when a CUDA call failed.
void check(cudaError_t error, const char* what);

inline cudaStream_t stream_of(intptr_t stream) {
  if (stream == 1 || stream == 0) return cudaStreamLegacy;
  if (stream == 2) return cudaStreamPerThread;
  return reinterpret_cast<cudaStream_t>(stream);
}

inline cudaStream_t current_stream() { return stream_of(current_launch().stream); }

// Raises if the last launch failed (a bad configuration, not an asynchronous fault).
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Stream-ordered scratch memory for one call, freed on the same stream (so after
// every kernel of the call that uses it).
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t count) : stream_(current_stream()) {
    if (count > 0)
      check(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(T), stream_),
            "cudaMallocAsync");
  }
  ~DeviceBuffer() {
    if (data_) cudaFreeAsync(data_, stream_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return data_; }

 private:
  T* data_ = nullptr;
  cudaStream_t stream_;
};

// Copies count values from the device to the host and waits for them (where a
// driver synchronizes: a value returned to Python, a label check).
template <class T>
void copy_to_host(T* host, const T* device, int64_t count) {
  const cudaStream_t stream = current_stream();
  check(cudaMemcpyAsync(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

}  // namespace nnfast::cuda
