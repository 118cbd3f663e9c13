// Vendor reference on the GPU: NCCL's own collectives (ncclAllReduce, ncclBroadcast, ncclReduce,
// ncclReduceScatter, ncclAllGather) behind the Implementation interface, on the rank's stream.
#include "cclab/error.h"
#include "cclab/implementation.h"
#include "device_context.h"

namespace cclab {

namespace {

ncclDataType_t nccl_type(DataType type) {
  switch (type) {
    case DataType::f32:
      return ncclFloat32;
    case DataType::f64:
      return ncclFloat64;
    case DataType::f16:
      return ncclFloat16;
    case DataType::bf16:
      return ncclBfloat16;
    case DataType::i32:
      return ncclInt32;
    case DataType::i64:
      return ncclInt64;
    case DataType::u8:
      return ncclUint8;
  }
  throw Error("no NCCL type for this dtype");
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return ncclSum;
    case ReduceOp::prod:
      return ncclProd;
    case ReduceOp::min:
      return ncclMin;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::avg:
      return ncclAvg;
  }
  throw Error("no NCCL operator for this op");
}

class NcclCollective : public Implementation {
 public:
  NcclCollective(Collective collective, std::shared_ptr<DeviceContext> device)
      : collective_(collective), device_(std::move(device)) {}
  std::string name() const override { return "nccl"; }
  std::string transport() const override { return "nccl"; }

  void prepare(const CollectiveArgs& args) override {
    args_ = args;
    device_->nccl(Deadline::after(device_->timeout_s()));  // created on every rank at the first size
  }

  void run(const void* input, void* output, Deadline deadline) override {
    const NcclLibrary& nccl = *load_nccl();
    ncclComm_t comm = device_->nccl(deadline);
    const ncclDataType_t type = nccl_type(args_.dtype);
    const size_t block = args_.count / size_t(device_->size());  // reduce_scatter's and allgather's
    cudaStream_t stream = device_->stream();
    ncclResult_t status = ncclSuccess;
    switch (collective_) {
      case Collective::allreduce:
        status = nccl.ncclAllReduce(input, output, args_.count, type, nccl_op(args_.op), comm, stream);
        break;
      case Collective::broadcast:
        status = nccl.ncclBroadcast(input, output, args_.count, type, args_.root, comm, stream);
        break;
      case Collective::reduce:
        status = nccl.ncclReduce(input, output, args_.count, type, nccl_op(args_.op), args_.root, comm, stream);
        break;
      case Collective::reduce_scatter:
        status = nccl.ncclReduceScatter(input, output, block, type, nccl_op(args_.op), comm, stream);
        break;
      case Collective::allgather:
        status = nccl.ncclAllGather(input, output, block, type, comm, stream);
        break;
    }
    device_->check_nccl(status, "NCCL's collective", deadline);
  }

  void wait(Deadline deadline) override { device_->synchronize(deadline); }
  std::unique_ptr<IterationClock> clock() const override { return device_clock(*device_); }
  std::unique_ptr<GraphReplay> capture(const void* input, void* output, int iterations, Deadline deadline) override {
    return capture_graph(*device_, iterations, [&] { run(input, output, deadline); });
  }

 private:
  Collective collective_;
  std::shared_ptr<DeviceContext> device_;
  CollectiveArgs args_;
};

}  // namespace

std::unique_ptr<Implementation> make_nccl_collective(Collective collective, std::shared_ptr<DeviceContext> device) {
  nccl_or_refuse();
  return std::make_unique<NcclCollective>(collective, std::move(device));
}

}  // namespace cclab
