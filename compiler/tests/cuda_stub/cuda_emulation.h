// A host emulation of the little of CUDA that Flumen's generated kernels use, so that a
// C++ compiler can check their syntax (`g++ -fsyntax-only`) and run them on the CPU
// (compiler/tests/cuda_codegen.rs). Blocks run one after another; the threads of a block
// run concurrently as std::threads, so `__shared__` (a static) is per block,
// `__syncthreads` is a barrier over the block and `__shfl_down_sync` exchanges values
// through a per-warp buffer between two barriers over the warp.
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using std::isnan;
using std::signbit;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

struct fl_dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local fl_dim3 threadIdx, blockIdx;
inline fl_dim3 blockDim, gridDim;

struct fl_block_state {
  std::unique_ptr<std::barrier<>> block;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<unsigned long long> exchange;
};
inline fl_block_state fl_block;
inline std::mutex fl_atomic_mutex;

inline void __syncthreads() { fl_block.block->arrive_and_wait(); }

template <class T> T __shfl_down_sync(unsigned, T v, int off) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  unsigned long long bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  fl_block.exchange[threadIdx.x] = bits;
  fl_block.warps[warp]->arrive_and_wait();
  T out = v;
  if (lane + off < 32) std::memcpy(&out, &fl_block.exchange[warp * 32 + lane + off], sizeof(T));
  fl_block.warps[warp]->arrive_and_wait();
  return out;
}

inline int atomicCAS(int* p, int cmp, int val) {
  std::lock_guard<std::mutex> g(fl_atomic_mutex);
  int old = *p;
  if (old == cmp) *p = val;
  return old;
}
template <class T> T atomicAdd(T* p, T v) {
  std::lock_guard<std::mutex> g(fl_atomic_mutex);
  T old = *p;
  *p = old + v;
  return old;
}

// Run `kernel` (a call of the generated function) as <<<blocks, threads>>>.
inline void fl_launch(unsigned blocks, unsigned threads, const std::function<void()>& kernel) {
  gridDim.x = blocks;
  blockDim.x = threads;
  for (unsigned b = 0; b < blocks; ++b) {
    fl_block.block = std::make_unique<std::barrier<>>(threads);
    fl_block.warps.clear();
    for (unsigned w = 0; w < threads / 32; ++w) fl_block.warps.push_back(std::make_unique<std::barrier<>>(32));
    fl_block.exchange.assign(threads, 0);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, b, t] { blockIdx.x = b; threadIdx.x = t; kernel(); });
    for (auto& th : pool) th.join();
  }
}
