// The grpc C++ baseline of bench/compare.py: the article's Search service
// (/Search/search: does the query contain "banana", ignoring case) on grpc's
// asynchronous API, one completion queue drained by one thread, as a C++
// server tuned for one core is written. Built by compare.py from Debian's
// libgrpc++-dev and protobuf-compiler-grpc; not part of the Rust build.
//
//   search_server HOST:PORT
//
// Prints the address once listening. ASCII case folding only (enough for
// the benchmark's "Banana"; the Rust server folds Unicode as Python does).

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "search.grpc.pb.h"

namespace {

bool ContainsBanana(const std::string& text) {
  static const std::string kNeedle = "banana";
  auto folded_equal = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  };
  return std::search(text.begin(), text.end(), kNeedle.begin(), kNeedle.end(), folded_equal) != text.end();
}

// One call in flight: asked for, then answered, then freed. Its address is
// the tag the completion queue hands back.
class Call {
 public:
  Call(Search::AsyncService* service, grpc::ServerCompletionQueue* queue)
      : service_(service), queue_(queue), responder_(&context_) {
    service_->Requestsearch(&context_, &request_, &responder_, queue_, queue_, this);
  }

  // The call's next step, when the queue says its last one is done.
  void Step(bool ok) {
    if (answered_ || !ok) {
      delete this;
      return;
    }
    // Ask for the next call before answering this one.
    new Call(service_, queue_);
    SearchStatus reply;
    reply.set_status(ContainsBanana(request_.query()) ? 1 : 0);
    answered_ = true;
    responder_.Finish(reply, grpc::Status::OK, this);
  }

 private:
  Search::AsyncService* service_;
  grpc::ServerCompletionQueue* queue_;
  grpc::ServerContext context_;
  SearchParam request_;
  grpc::ServerAsyncResponseWriter<SearchStatus> responder_;
  bool answered_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:8100";
  Search::AsyncService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> queue = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "cannot listen on %s\n", address.c_str());
    return 1;
  }
  std::printf("%s\n", address.c_str());
  std::fflush(stdout);
  new Call(&service, queue.get());
  void* tag;
  bool ok;
  while (queue->Next(&tag, &ok)) {
    static_cast<Call*>(tag)->Step(ok);
  }
  return 0;
}
