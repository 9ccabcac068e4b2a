// The one boundary between gRPC and crius: handlers return absl::Status, and
// Serve() turns it into the gRPC status, logs every failed RPC with the ids it
// was about, and (with the metrics registry) counts and times it.
#pragma once

#include "absl/strings/string_view.h"
#include <chrono>
#include <string>


#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace crius::cri {

// absl and gRPC share the google.rpc.Code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

// "pod_sandbox_id=abc container_id=def" from the request's id fields, for logs.
std::string DescribeRequest(const google::protobuf::Message& request);

// Logs one finished RPC, and counts and times it in metrics::Current() when
// start-up installed one.
void RecordRpc(absl::string_view method, const google::protobuf::Message& request,
               const absl::Status& status, std::chrono::steady_clock::duration elapsed);

template <typename Handler>
grpc::Status Serve(absl::string_view method, const google::protobuf::Message& request,
                   Handler&& handler) {
  auto start = std::chrono::steady_clock::now();
  absl::Status status = handler();
  RecordRpc(method, request, status, std::chrono::steady_clock::now() - start);
  return ToGrpcStatus(status);
}


}  // namespace crius::cri
