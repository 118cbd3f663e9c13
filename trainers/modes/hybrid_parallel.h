// Hybrid mode (--mode hybrid with pp = 1; DESIGN 3.6): Krizhevsky's "one weird trick". The layers
// before the first fully connected layer (convolutions: few parameters, most of the compute) run
// data-parallel on every rank's Shard of the batch; the fully connected suffix (most of the
// parameters) runs tensor-parallel over the same ranks on the whole batch, as in tensor_parallel.h.
// The factory, make_hybrid_parallel, is declared with the other modes' in mode.h.
//
// Traffic per step, by phase (B the global batch, b = ceil(B / ranks) the largest shard, F the
// features per sample at the boundary, N ranks; the simulator's exact count is what is predicted):
//   forward:   allgather of the boundary activations, N blocks of b x F floats (shards padded to b),
//              and of the labels (N blocks of b), then the fc suffix's forward collectives;
//   backward:  the fc suffix's backward collectives, then, when the first fc is column-split, a
//              reduce-scatter of its input gradient (N blocks of b x F: Megatron's f and the return
//              to the shards at once);
//   grad_sync: allreduce of the convolution layers' gradients in DDP buckets (gradient_buckets.h),
//              started during backward.
#pragma once

#include "modes/mode.h"
#include "modes/tensor_split.h"
