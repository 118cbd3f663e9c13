// --check: inputs whose reduction is known in closed form, and counting wrong elements.
#pragma once

#include <cstddef>

#include "cclab/algorithm.h"
#include "cclab/dtype.h"

namespace cclab {

/// The value rank `rank` contributes at array index `index`: a small integer, so sums, products,
/// minima and maxima are exact in every type (products use 1 and 2 only).
double check_value(int rank, size_t index, ReduceOp op);

/// Fills elements [first, first + count) of this rank's array into `buffer`.
void fill_check_input(void* buffer, size_t count, DataType type, ReduceOp op, int rank, size_t first = 0);

/// Counts elements of an allreduce result over `ranks` ranks that differ from the expected value.
/// Integers must match exactly (with the type's wrap-around); floats within a relative tolerance
/// of a few units of roundoff times log2(ranks).
size_t count_wrong_allreduce(const void* output, size_t count, DataType type, ReduceOp op, int ranks,
                             size_t first = 0);

/// Counts elements of `output` that differ from what `collective` must leave on `rank` when every
/// rank's input was filled by fill_check_input (broadcast: only the root's input matters;
/// allgather: each rank fills its own block with indices from 0). `count` is the whole array.
/// Ranks whose output the collective leaves unspecified (reduce, non-root) count nothing.
size_t count_wrong(Collective collective, const void* output, size_t count, DataType type, ReduceOp op, int ranks,
                   int rank, int root);

}  // namespace cclab
