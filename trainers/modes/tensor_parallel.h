// Tensor-parallel mode (--mode tensor; DESIGN 3.6): grid tp = ranks, every rank runs its slices of
// the model (Megatron-LM column/row pairs, tensor_split.h) on the whole global batch. The factory,
// make_tensor_parallel, is declared with the other modes' in mode.h; the machinery it shares with the
// hybrid mode is in tensor_split.h.
//
// Traffic per step, by phase (DESIGN 3.7; the simulator's exact count is what the mode predicts):
//   forward:   per layer pair, an allreduce of B x (row layer's outputs per sample) floats, and for a
//              gathered column layer an allgather of t blocks of B x ceil(outputs / t) floats (the
//              slices padded to the largest);
//   backward:  per column layer with a layer with parameters before it, an allreduce of
//              B x (its inputs per sample) floats;
//   grad_sync: none (slices' gradients are complete on their rank, replicas' identical everywhere).
#pragma once

#include "modes/mode.h"
#include "modes/tensor_split.h"
