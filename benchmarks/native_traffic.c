/* The fastest plain C loop with Adam's memory traffic, built with -O3 -march=native
 * -fopenmp: the yardstick for nnfast's roofline kernel (native_traffic.py times both).
 *
 * Adam reads the gradient and updates p, m and v in place: per element one array only
 * read and three read and written, 28 bytes in float32. s = g[i]; p[i] += s, m[i] += s,
 * v[i] += s is that traffic with one add per stored value, which the compiler
 * vectorizes to the machine's widest registers. The threads take contiguous ranges
 * (a static schedule), as nnfast's static schedule over its chunks does. */
#include <stdint.h>

void adam_traffic(const float* restrict g, float* restrict p, float* restrict m,
                  float* restrict v, int64_t n, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    const float s = g[i];
    p[i] += s;
    m[i] += s;
    v[i] += s;
  }
}
