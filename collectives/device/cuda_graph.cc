// --cuda-graph: a size's timed calls captured once into a CUDA graph and replayed, as nccl-tests'
// -G does, so the time excludes the host's per-call launch cost. NCCL's calls can be captured
// (NCCL 2.9 and later); everything cclab's device implementations enqueue goes on the rank's one
// stream, so one capture of that stream holds all of it.
#include "cclab/error.h"
#include "cclab/implementation.h"
#include "device_context.h"

namespace cclab {
namespace {

class CudaGraphReplay : public GraphReplay {
 public:
  CudaGraphReplay(DeviceContext& device, cudaGraphExec_t graph) : device_(device), graph_(graph) {
    if (const cudaError_t status = cudaEventCreate(&start_); status != cudaSuccess) {
      cudaGraphExecDestroy(graph_);
      check_cuda(status, "cudaEventCreate");
    }
    if (const cudaError_t status = cudaEventCreate(&stop_); status != cudaSuccess) {
      cudaEventDestroy(start_);
      cudaGraphExecDestroy(graph_);
      check_cuda(status, "cudaEventCreate");
    }
  }
  ~CudaGraphReplay() override {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaGraphExecDestroy(graph_);
  }
  CudaGraphReplay(const CudaGraphReplay&) = delete;
  CudaGraphReplay& operator=(const CudaGraphReplay&) = delete;

  double replay_us(Deadline deadline) override {
    device_.make_current();
    check_cuda(cudaEventRecord(start_, device_.stream()), "cudaEventRecord");
    check_cuda(cudaGraphLaunch(graph_, device_.stream()), "cudaGraphLaunch");
    check_cuda(cudaEventRecord(stop_, device_.stream()), "cudaEventRecord");
    device_.synchronize(deadline);
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return double(ms) * 1e3;
  }

 private:
  DeviceContext& device_;
  cudaGraphExec_t graph_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace

std::unique_ptr<GraphReplay> capture_graph(DeviceContext& device, int iterations,
                                           const std::function<void()>& enqueue) {
  device.make_current();
  // Relaxed: the capture does not forbid unrelated CUDA calls of this thread (e.g. NCCL's own
  // bookkeeping) while it records.
  check_cuda(cudaStreamBeginCapture(device.stream(), cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
  cudaGraph_t graph = nullptr;
  try {
    for (int i = 0; i < iterations; ++i) enqueue();
  } catch (...) {
    cudaStreamEndCapture(device.stream(), &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  check_cuda(cudaStreamEndCapture(device.stream(), &graph), "cudaStreamEndCapture");
  cudaGraphExec_t executable = nullptr;
  const cudaError_t status = cudaGraphInstantiate(&executable, graph, 0);
  cudaGraphDestroy(graph);
  check_cuda(status, "cudaGraphInstantiate");
  return std::make_unique<CudaGraphReplay>(device, executable);
}

}  // namespace cclab
