// Vendor reference: Open MPI's MPI_Allreduce behind the Implementation interface.
// MPI has no half-precision types and no average: f16/bf16 go through user-defined MPI ops that
// call our kernels (as a user would write them), and avg is a sum followed by a division.
#include <mpi.h>

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

class MpiAllreduce : public Implementation {
 public:
  explicit MpiAllreduce(Comm& comm) : comm_(comm) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) throw UsageError("impl mpi needs ranks started by mpirun (cclab -n N starts them so itself)");
  }
  std::string name() const override { return "mpi"; }
  std::string transport() const override { return "mpi"; }
  void prepare(const CollectiveArgs& args) override { args_ = args; }
  void run(const void* input, void* output, Deadline) override {
    // MPI_Allreduce has no deadline; a dead peer ends the job through mpirun instead.
    const void* send = input == output ? MPI_IN_PLACE : input;
    check_mpi(MPI_Allreduce(send, output, int(args_.count), mpi_type(args_.dtype), mpi_op(args_.dtype, args_.op),
                            MPI_COMM_WORLD),
              "MPI_Allreduce");
    if (args_.op == ReduceOp::avg) divide(output, args_.count, args_.dtype, comm_.size());
  }

 private:
  Comm& comm_;
  CollectiveArgs args_;
};

}  // namespace

std::unique_ptr<Implementation> make_vendor_implementation(Collective collective, const std::string& name,
                                                           Comm& comm) {
  if (collective == Collective::allreduce && name == "mpi") return std::make_unique<MpiAllreduce>(comm);
  return nullptr;
}

std::vector<std::string> vendor_implementation_names(Collective collective) {
  if (collective == Collective::allreduce) return {"mpi"};
  return {};
}

bool needs_mpi_launch(const std::string& name) { return name == "mpi"; }

}  // namespace cclab
