// Vendor reference: the MPI library's collectives (MPI_Allreduce, MPI_Bcast, MPI_Reduce,
// MPI_Reduce_scatter_block, MPI_Allgather) behind the Implementation interface.
// MPI has no half-precision types and no average: f16/bf16 go through user-defined MPI ops that
// call our kernels (as a user would write them), and avg is a sum followed by a division.
#include <mpi.h>

#include <cstring>

#include "cclab/error.h"
#include "cclab/implementation.h"
#include "cclab/reduce.h"

namespace cclab {
namespace {

template <DataType Type, ReduceOp Op>
void half_precision_op(void* in, void* inout, int* length, MPI_Datatype*) {
  reduce(inout, inout, in, size_t(*length), Type, Op);
}

template <DataType Type>
MPI_Op half_precision_mpi_op(ReduceOp op) {
  static MPI_Op ops[5] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};
  static constexpr MPI_User_function* functions[5] = {
      half_precision_op<Type, ReduceOp::sum>, half_precision_op<Type, ReduceOp::prod>,
      half_precision_op<Type, ReduceOp::min>, half_precision_op<Type, ReduceOp::max>,
      half_precision_op<Type, ReduceOp::sum>};  // avg: sum, then divide
  MPI_Op& slot = ops[int(op)];
  if (slot == MPI_OP_NULL) MPI_Op_create(functions[int(op)], /*commute=*/1, &slot);
  return slot;
}

MPI_Datatype mpi_type(DataType type) {
  switch (type) {
    case DataType::f32: return MPI_FLOAT;
    case DataType::f64: return MPI_DOUBLE;
    case DataType::i32: return MPI_INT32_T;
    case DataType::i64: return MPI_INT64_T;
    case DataType::u8: return MPI_UINT8_T;
    case DataType::f16:
    case DataType::bf16: return MPI_UINT16_T;  // carried as 16-bit words, reduced by our ops
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(DataType type, ReduceOp op) {
  if (type == DataType::f16) return half_precision_mpi_op<DataType::f16>(op);
  if (type == DataType::bf16) return half_precision_mpi_op<DataType::bf16>(op);
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::avg: return MPI_SUM;
    case ReduceOp::prod: return MPI_PROD;
    case ReduceOp::min: return MPI_MIN;
    case ReduceOp::max: return MPI_MAX;
  }
  return MPI_OP_NULL;
}

void check_mpi(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(std::string(what) + " failed: " + std::string(text, size_t(length)));
}

// One MPI collective call per run(). MPI has no deadlines: a dead peer ends the job through
// mpirun instead.
class MpiCollective : public Implementation {
 public:
  MpiCollective(Collective collective, Comm& comm) : collective_(collective), comm_(comm) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) throw UsageError("impl mpi needs ranks started by mpirun (cclab -n N starts them so itself)");
  }
  std::string name() const override { return "mpi"; }
  std::string transport() const override { return "mpi"; }
  void prepare(const CollectiveArgs& args) override { args_ = args; }

  void run(const void* input, void* output, Deadline) override {
    const bool inplace = input == output || args_.inplace;
    const MPI_Datatype type = mpi_type(args_.dtype);
    const MPI_Op op = mpi_op(args_.dtype, args_.op);
    const int count = int(args_.count);
    const int block = int(args_.count / size_t(comm_.size()));
    const size_t element = dtype_size(args_.dtype);
    const bool root = comm_.rank() == args_.root;
    switch (collective_) {
      case Collective::allreduce:
        check_mpi(MPI_Allreduce(inplace ? MPI_IN_PLACE : input, output, count, type, op, MPI_COMM_WORLD),
                  "MPI_Allreduce");
        finish_average(output, args_.count);
        break;
      case Collective::broadcast:
        // MPI broadcasts one buffer: the root's output gets its input first.
        if (root && !inplace) std::memcpy(output, input, args_.count * element);
        check_mpi(MPI_Bcast(output, count, type, args_.root, MPI_COMM_WORLD), "MPI_Bcast");
        break;
      case Collective::reduce:
        check_mpi(MPI_Reduce(inplace && root ? MPI_IN_PLACE : input, output, count, type, op, args_.root,
                             MPI_COMM_WORLD),
                  "MPI_Reduce");
        if (root) finish_average(output, args_.count);
        break;
      case Collective::reduce_scatter: {
        // In place MPI leaves the block at the start of the buffer; NCCL's layout wants block r
        // at offset r, so it moves there (part of the measured time, as a user would pay it).
        void* base = const_cast<void*>(input);
        check_mpi(MPI_Reduce_scatter_block(inplace ? MPI_IN_PLACE : input, inplace ? base : output, block, type, op,
                                           MPI_COMM_WORLD),
                  "MPI_Reduce_scatter_block");
        if (inplace && output != base) std::memmove(output, base, size_t(block) * element);
        finish_average(output, size_t(block));
        break;
      }
      case Collective::allgather:
        check_mpi(MPI_Allgather(inplace ? MPI_IN_PLACE : input, block, type, output, block, type, MPI_COMM_WORLD),
                  "MPI_Allgather");
        break;
    }
  }

 private:
  void finish_average(void* buffer, size_t count) {
    if (args_.op == ReduceOp::avg) divide(buffer, count, args_.dtype, comm_.size());
  }
  Collective collective_;
  Comm& comm_;
  CollectiveArgs args_;
};

}  // namespace

std::unique_ptr<Implementation> make_mpi_implementation(Collective collective, Comm& comm) {
  return std::make_unique<MpiCollective>(collective, comm);
}

}  // namespace cclab
