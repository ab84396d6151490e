// CPU build of the CUDA arithmetic core (core.cuh) behind a C ABI for ctypes.
// Built on demand by kernels/cpu_core.py with g++ -ffp-contract=off into a temp dir. The
// *_segments entry points loop over the "thread index" exactly as the kernels' grids do.
#include "core.cuh"

extern "C" {

int tw_n_features(void) { return TW_N_FEATURES; }
int tw_spec_version(void) { return TW_SPEC_VERSION; }
int tw_state_bytes(void) { return (int)sizeof(tw_feat_state); }

// Rows in arrival order, any mix of slots (the streaming semantics).
void tw_features_rows(void* states, const tw_u32* levels, const tw_i32* slots, long long n_rows,
                      int depth, float* out) {
    tw_feat_state* st = (tw_feat_state*)states;
    for (long long r = 0; r < n_rows; ++r)
        tw_feat_step(st + slots[r], levels + r * depth * TW_LEVEL_WORDS, depth,
                     out + r * TW_N_FEATURES);
}

// tw_features_kernel's grid, serially.
void tw_features_segments(void* states, const tw_u32* levels, const tw_i32* order,
                          const tw_i32* seg_off, const tw_i32* seg_slot, int n_seg, int depth,
                          float* feats, float* last) {
    for (int g = 0; g < n_seg; ++g)
        tw_features_segment(g, (tw_feat_state*)states, levels, order, seg_off, seg_slot, depth,
                            feats, last);
}

// tw_signal_kernel's grid, serially.
void tw_signal_segments(void* states, const tw_u32* levels, const tw_i32* order,
                        const tw_i32* seg_off, const tw_i32* seg_slot, int n_seg, int depth,
                        float* feats, float* last, const float* params, const tw_i32* dims,
                        int n_layers, float* probs) {
    for (int g = 0; g < n_seg; ++g)
        tw_signal_segment(g, (tw_feat_state*)states, levels, order, seg_off, seg_slot, depth,
                          feats, last, params, dims, n_layers, probs);
}

void tw_mlp_batch(const float* params, const tw_i32* dims, int n_layers, const float* x,
                  long long n, float* out) {
    for (long long r = 0; r < n; ++r)
        tw_mlp_forward(params, dims, n_layers, x + r * dims[0], out + r * dims[n_layers]);
}

}  // extern "C"
