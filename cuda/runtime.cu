#include <stdexcept>
#include <string>

#include "grad_scale.cuh"
#include "runtime.cuh"

namespace nnfast::cuda {

Launch& current_launch() {
  static thread_local Launch launch;
  return launch;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error to keep
    return 0;
  }
  return count;
}

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(error));
}

namespace {

__device__ const float kDeviceOne = 1.0f;

__global__ void __launch_bounds__(1024) sum_partials(const double* partials, int64_t count, double* total) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  __shared__ double scratch[32];
  sum = block_reduce(sum, 0.0, scratch, Add{});
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace

const float* device_one() {
  void* address = nullptr;
  check(cudaGetSymbolAddress(&address, kDeviceOne), "cudaGetSymbolAddress");
  return static_cast<const float*>(address);
}

double sum_on_device(const double* partials, int64_t count) {
  if (count == 0) return 0.0;
  DeviceBuffer<double> total(1);
  sum_partials<<<1, 1024, 0, current_stream()>>>(partials, count, total.get());
  check_launch("sum_partials");
  double host = 0.0;
  copy_to_host(&host, total.get(), 1);
  return host;
}

}  // namespace nnfast::cuda
