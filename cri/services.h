// The gRPC services: every CRI v1 RPC, routed through Serve() to its handler.
// An RPC whose issue has not landed answers Unimplemented with its name.
#pragma once

#include "api.grpc.pb.h"
#include "cri/runtime.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

class RuntimeServiceImpl final
    : public v1::RuntimeService::WithRawCallbackMethod_ListPodSandbox<
          v1::RuntimeService::WithRawCallbackMethod_ListContainers<v1::RuntimeService::Service>> {
 public:
  explicit RuntimeServiceImpl(Runtime& rt) : rt_(rt) {}

#define CRIUS_UNARY(Method, Req, Resp) \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Req* req, v1::Resp* resp) override;
#define CRIUS_STREAM(Method, Req, Resp)                                     \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Req* req,         \
                      grpc::ServerWriter<v1::Resp>* writer) override;
#define CRIUS_WIRE(Method, Req, Resp)                                                 \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req, \
                                   grpc::ByteBuffer* resp) override;
#include "cri/runtime_rpcs.inc"
#undef CRIUS_UNARY
#undef CRIUS_STREAM
#undef CRIUS_WIRE

 private:
  Runtime& rt_;
};

class ImageServiceImpl final : public v1::ImageService::Service {
 public:
  explicit ImageServiceImpl(Runtime& rt) : rt_(rt) {}

#define CRIUS_UNARY(Method, Req, Resp) \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Req* req, v1::Resp* resp) override;
#define CRIUS_STREAM(Method, Req, Resp)                                     \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Req* req,         \
                      grpc::ServerWriter<v1::Resp>* writer) override;
#include "cri/image_rpcs.inc"
#undef CRIUS_UNARY
#undef CRIUS_STREAM

 private:
  Runtime& rt_;
};

}  // namespace crius::cri
