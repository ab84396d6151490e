// Fused order-book feature kernel over all symbols' snapshots (and the fused slow-path
// kernel: features + MLP). One thread per symbol segment; see tw_features_segment in
// core.cuh for the row layout. Compile with --fmad=false so the double-precision feature
// arithmetic rounds exactly like the CPU build and numpy.
#include "core.cuh"

// The arguments of both kernels: feature state, book rows and their per-symbol segments,
// feature outputs (tw_features_segment).
#define TW_SEGMENT_KERNEL_ARGS                                                              \
    tw_feat_state* __restrict__ states, const tw_u32* __restrict__ levels,                  \
        const tw_i32* __restrict__ order, const tw_i32* __restrict__ seg_off,               \
        const tw_i32* __restrict__ seg_slot, int n_seg, int depth,                          \
        float* __restrict__ feats, float* __restrict__ last

extern "C" __global__ void tw_features_kernel(TW_SEGMENT_KERNEL_ARGS) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g < n_seg)
        tw_features_segment(g, states, levels, order, seg_off, seg_slot, depth, feats, last);
}

extern "C" __global__ void tw_signal_kernel(TW_SEGMENT_KERNEL_ARGS,
                                            const float* __restrict__ params,
                                            const tw_i32* __restrict__ dims, int n_layers,
                                            float* __restrict__ probs) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g < n_seg)
        tw_signal_segment(g, states, levels, order, seg_off, seg_slot, depth, feats, last,
                          params, dims, n_layers, probs);
}
