// Vendor reference: Gloo (Debian's libgloo, TCP transport) behind the Implementation interface:
// allreduce as gloo_ring, gloo_ring_chunked, gloo_halving_doubling, gloo_bcube, and broadcast
// as gloo (BroadcastOneToAll).
//
// Rendezvous: rank 0 serves a token-protected TcpStore (loopback unless CCLAB_STORE_BIND_ADDR
// says otherwise), its address travels over our bootstrap, and Gloo's connectFullMesh runs over
// it. Gloo works in place on one buffer: out of place, the input is copied to the output first
// (inside the timed call, as a Gloo user would have to). It has no bf16 or average: 16-bit types
// are reduced by our kernels, average is a sum followed by a division.
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>

#include <gloo/allreduce_bcube.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring.h>
#include <gloo/allreduce_ring_chunked.h>
#include <gloo/broadcast_one_to_all.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include "bootstrap/job_network.h"
#include "bootstrap/job_token.h"
#include "bootstrap/store_address.h"
#include "bootstrap/tcp_store_client.h"
#include "bootstrap/tcp_store_server.h"
#include "cclab/error.h"
#include "cclab/implementation.h"
#include "cclab/reduce.h"

namespace cclab {
namespace {

// Gloo's Store over our TcpStoreClient, with every wait bounded.
class GlooStore : public gloo::rendezvous::Store {
 public:
  GlooStore(TcpStoreClient& client, double timeout_s) : client_(client), timeout_s_(timeout_s) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    client_.set(key, std::string(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    const std::string value = client_.get(key, Deadline::after(timeout_s_));
    return {value.begin(), value.end()};
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, std::chrono::milliseconds(0)); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds&) override {
    if (!client_.wait_all(keys, Deadline::after(timeout_s_)).missing.empty())
      throw TimeoutError("gloo rendezvous timed out after " + std::to_string(int(timeout_s_)) + " s");
  }

 private:
  TcpStoreClient& client_;
  double timeout_s_;
};

// One Gloo context per communicator, shared by every Gloo implementation of the run.
struct GlooSession {
  std::unique_ptr<TcpStoreServer> server;  // rank 0 only
  std::unique_ptr<TcpStoreClient> client;
  std::shared_ptr<gloo::rendezvous::Context> context;
};

std::shared_ptr<GlooSession> gloo_session(Comm& comm) {
  static std::mutex mutex;
  static std::map<Comm*, std::weak_ptr<GlooSession>> sessions;
  std::lock_guard lock(mutex);
  if (auto existing = sessions[&comm].lock()) return existing;

  auto session = std::make_shared<GlooSession>();
  const char* bind = std::getenv("CCLAB_STORE_BIND_ADDR");
  const std::string bind_address = bind && *bind ? bind : "127.0.0.1";
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::string announced;
  if (comm.rank() == 0) {
    const std::string token = make_job_token();
    session->server = std::make_unique<TcpStoreServer>(token, bind_address);
    const std::string store_host = bind_address == "127.0.0.1" ? bind_address : std::string(host);
    announced = store_host + ":" + std::to_string(session->server->port()) + " " + token;
  }
  const std::string address = comm.allgather(announced)[0];
  const size_t space = address.find(' ');
  const Deadline deadline = Deadline::after(comm.timeout_s());
  session->client = std::make_unique<TcpStoreClient>(parse_store_address(address.substr(0, space), "gloo store"),
                                                     address.substr(space + 1), deadline,
                                                     TcpStoreClient::reply_grace_for(comm.timeout_s()));
  GlooStore store(*session->client, comm.timeout_s());
  gloo::transport::tcp::attr attr(ranks_share_one_host(comm.host_names()) ? "127.0.0.1" : host);
  auto device = gloo::transport::tcp::CreateDevice(attr);
  session->context = std::make_shared<gloo::rendezvous::Context>(comm.rank(), comm.size());
  session->context->setTimeout(std::chrono::milliseconds(long(comm.timeout_s() * 1000)));
  session->context->connectFullMesh(store, device);
  sessions[&comm] = session;
  return session;
}

// Reductions for 16-bit floats, which Gloo does not know: our kernels on uint16_t words.
template <DataType Type, ReduceOp Op>
void half_precision(uint16_t* x, const uint16_t* y, size_t n) {
  reduce(x, x, y, n, Type, Op);
}

template <typename T>
const gloo::ReductionFunction<T>* native_function(ReduceOp op) {
  switch (op) {
    case ReduceOp::prod: return gloo::ReductionFunction<T>::product;
    case ReduceOp::min: return gloo::ReductionFunction<T>::min;
    case ReduceOp::max: return gloo::ReductionFunction<T>::max;
    default: return gloo::ReductionFunction<T>::sum;  // avg: sum, then divide
  }
}

template <DataType Type>
const gloo::ReductionFunction<uint16_t>* half_function(ReduceOp op) {
  using Function = gloo::ReductionFunction<uint16_t>;
  static const Function sum(gloo::SUM, half_precision<Type, ReduceOp::sum>);
  static const Function prod(gloo::PRODUCT, half_precision<Type, ReduceOp::prod>);
  static const Function min(gloo::MIN, half_precision<Type, ReduceOp::min>);
  static const Function max(gloo::MAX, half_precision<Type, ReduceOp::max>);
  switch (op) {
    case ReduceOp::prod: return &prod;
    case ReduceOp::min: return &min;
    case ReduceOp::max: return &max;
    default: return &sum;
  }
}

class GlooImplementation : public Implementation {
 public:
  GlooImplementation(std::string name, Collective collective, Comm& comm)
      : name_(std::move(name)), collective_(collective), comm_(comm), session_(gloo_session(comm)) {}
  std::string name() const override { return name_; }
  std::string transport() const override { return "gloo-tcp"; }
  void prepare(const CollectiveArgs& args) override {
    if (args.count > size_t(INT32_MAX)) throw UsageError(name_ + ": Gloo counts are int; lower -e/--maxbytes");
    args_ = args;
    algorithm_.reset();
  }
  void run(const void* input, void* output, Deadline) override {
    const size_t bytes = args_.count * dtype_size(args_.dtype);
    const bool root = comm_.rank() == args_.root;
    if (input != output && (collective_ == Collective::allreduce || root)) std::memcpy(output, input, bytes);
    // Gloo binds an algorithm to its buffer: built once per size (and buffer), collectively.
    if (!algorithm_ || output != bound_) {
      algorithm_ = make_algorithm(output);
      bound_ = output;
    }
    algorithm_->run();
    if (collective_ == Collective::allreduce && args_.op == ReduceOp::avg)
      divide(output, args_.count, args_.dtype, comm_.size());
  }

 private:
  template <typename T>
  std::unique_ptr<gloo::Algorithm> make_typed(void* buffer, const gloo::ReductionFunction<T>* function) {
    const auto& context = session_->context;
    std::vector<T*> pointers{static_cast<T*>(buffer)};
    const int count = int(args_.count);
    if (collective_ == Collective::broadcast)
      return std::make_unique<gloo::BroadcastOneToAll<T>>(context, pointers, size_t(count), args_.root);
    if (name_ == "gloo_ring") return std::make_unique<gloo::AllreduceRing<T>>(context, pointers, count, function);
    if (name_ == "gloo_ring_chunked")
      return std::make_unique<gloo::AllreduceRingChunked<T>>(context, pointers, count, function);
    if (name_ == "gloo_halving_doubling")
      return std::make_unique<gloo::AllreduceHalvingDoubling<T>>(context, pointers, count, function);
    return std::make_unique<gloo::AllreduceBcube<T>>(context, pointers, count, function);
  }

  std::unique_ptr<gloo::Algorithm> make_algorithm(void* buffer) {
    switch (args_.dtype) {
      case DataType::f32: return make_typed<float>(buffer, native_function<float>(args_.op));
      case DataType::f64: return make_typed<double>(buffer, native_function<double>(args_.op));
      case DataType::i32: return make_typed<int32_t>(buffer, native_function<int32_t>(args_.op));
      case DataType::i64: return make_typed<int64_t>(buffer, native_function<int64_t>(args_.op));
      case DataType::u8: return make_typed<uint8_t>(buffer, native_function<uint8_t>(args_.op));
      case DataType::f16: return make_typed<uint16_t>(buffer, half_function<DataType::f16>(args_.op));
      case DataType::bf16: return make_typed<uint16_t>(buffer, half_function<DataType::bf16>(args_.op));
    }
    throw Error("gloo: unknown datatype");
  }

  std::string name_;
  Collective collective_;
  Comm& comm_;
  std::shared_ptr<GlooSession> session_;
  CollectiveArgs args_;
  std::unique_ptr<gloo::Algorithm> algorithm_;
  void* bound_ = nullptr;
};

}  // namespace

std::vector<std::string> gloo_implementation_names(Collective collective) {
  if (collective == Collective::allreduce)
    return {"gloo_ring", "gloo_ring_chunked", "gloo_halving_doubling", "gloo_bcube"};
  if (collective == Collective::broadcast) return {"gloo"};
  return {};
}

std::unique_ptr<Implementation> make_gloo_implementation(Collective collective, const std::string& name,
                                                         Comm& comm) {
  for (const std::string& known : gloo_implementation_names(collective))
    if (known == name) return std::make_unique<GlooImplementation>(name, collective, comm);
  return nullptr;
}

}  // namespace cclab
