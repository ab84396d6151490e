// Fused small-MLP inference: all layers, ReLU and softmax in one kernel, weights staged once
// per block in shared memory. Two shapes of the same arithmetic (core.cuh):
//   tw_mlp_kernel       one thread per sample: throughput for large batches;
//   tw_mlp_warp_kernel  one warp per sample, lane j computes units j, j+32: latency at batch 1.
// Both take the flat parameter layout of models/mlp.py (per layer W row-major, then b).
// Dynamic shared memory: n_params floats (+ for the warp kernel 2*TW_MAX_WIDTH floats/warp).
#include "core.cuh"

// The arguments of both kernels: the flat parameters, the layer widths, inputs and outputs.
#define TW_MLP_KERNEL_ARGS                                                                  \
    const float* __restrict__ params, int n_params, const tw_i32* __restrict__ dims,        \
        int n_layers, const float* __restrict__ x, float* __restrict__ probs, int batch

// The whole block copies the parameters and the layer widths into shared memory.
__device__ __forceinline__ void tw_stage_model(float* sp, tw_i32* sd, const float* params,
                                               int n_params, const tw_i32* dims,
                                               int n_layers) {
    for (int i = threadIdx.x; i < n_params; i += blockDim.x) sp[i] = params[i];
    if (threadIdx.x <= n_layers) sd[threadIdx.x] = dims[threadIdx.x];
    __syncthreads();
}

extern "C" __global__ void tw_mlp_kernel(TW_MLP_KERNEL_ARGS) {
    extern __shared__ float sp[];
    __shared__ tw_i32 sd[TW_MAX_LAYERS + 1];
    tw_stage_model(sp, sd, params, n_params, dims, n_layers);
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r < batch)
        tw_mlp_forward(sp, sd, n_layers, x + (tw_i64)r * sd[0], probs + (tw_i64)r * sd[n_layers]);
}

extern "C" __global__ void tw_mlp_warp_kernel(TW_MLP_KERNEL_ARGS) {
    extern __shared__ float sp[];
    __shared__ tw_i32 sd[TW_MAX_LAYERS + 1];
    tw_stage_model(sp, sd, params, n_params, dims, n_layers);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int r = blockIdx.x * (blockDim.x >> 5) + warp;
    if (r >= batch) return;  // whole warps leave together: no later block-wide barrier
    float* act = sp + n_params + warp * 2 * TW_MAX_WIDTH;  // this warp's ping-pong buffers
    float* cur = act;
    float* nxt = act + TW_MAX_WIDTH;
    for (int i = lane; i < sd[0]; i += 32) cur[i] = x[(tw_i64)r * sd[0] + i];
    __syncwarp();
    const float* p = sp;
    for (int l = 0; l < n_layers; ++l) {
        const int in = sd[l], on = sd[l + 1];
        const bool hidden = l < n_layers - 1;
        for (int j = lane; j < on; j += 32) {
            const float v = tw_dense_unit(p, p + in * on, in, cur, j);
            nxt[j] = (hidden && v < 0.0f) ? 0.0f : v;
        }
        __syncwarp();
        p += in * on + on;
        float* t = cur; cur = nxt; nxt = t;
    }
    if (lane == 0) tw_softmax(cur, sd[n_layers], probs + (tw_i64)r * sd[n_layers]);
}
