#include "cri/services.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "cri/boundary.h"
#include "cri/handlers.h"

namespace crius::cri {

// A unary RPC served by `Handler(rt_, request, response)`.
#define ROUTE(Service, Method, Req, Resp, Handler)                                   \
  grpc::Status Service::Method(grpc::ServerContext*, const v1::Req* req, v1::Resp* resp) { \
    return Serve(#Method, *req, [&] { return Handler(rt_, *req, resp); });           \
  }
// A unary RPC whose answer `Handler(rt_, request, &bytes)` builds as bytes
// (the List RPCs, from each entry kept serialized): no message is built,
// copied or serialized per call. It runs on gRPC's callback threads, not
// the sync pool, so it must not wait long: the Lists ask a monitor only
// when its watch was lost.
#define ROUTE_WIRE(Service, Method, Req, Handler)                                                      \
  grpc::ServerUnaryReactor* Service::Method(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, \
                                            grpc::ByteBuffer* out) {                                      \
    v1::Req req;                                                                                         \
    grpc::Status st = Serve(#Method, req, [&]() -> absl::Status {                                        \
      CRIUS_RETURN_IF_ERROR(ParseWire(*in, &req));                                                       \
      auto* wire = new std::string;                                                                      \
      absl::Status status = Handler(rt_, req, wire);                                                     \
      *out = WireBuffer(wire);                                                                           \
      return status;                                                                                     \
    });                                                                                                  \
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();                                           \
    reactor->Finish(st);                                                                                 \
    return reactor;                                                                                      \
  }

namespace {

absl::Status ParseWire(const grpc::ByteBuffer& in, google::protobuf::Message* req) {
  std::vector<grpc::Slice> slices;
  if (!in.Dump(&slices).ok()) return absl::InvalidArgumentError("request: cannot be read");
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (!req->ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("request: is not a ", req->GetDescriptor()->name()));
  }
  return absl::OkStatus();
}

// The bytes, owned by the buffer from here on (no copy).
grpc::ByteBuffer WireBuffer(std::string* wire) {
  grpc::Slice slice(wire->data(), wire->size(), [](void* p) { delete static_cast<std::string*>(p); }, wire);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// RuntimeService
ROUTE(RuntimeServiceImpl, Version, VersionRequest, VersionResponse, RuntimeVersion)
ROUTE(RuntimeServiceImpl, RunPodSandbox, RunPodSandboxRequest, RunPodSandboxResponse, SandboxRun)
ROUTE(RuntimeServiceImpl, StopPodSandbox, StopPodSandboxRequest, StopPodSandboxResponse,
      SandboxStop)
ROUTE(RuntimeServiceImpl, RemovePodSandbox, RemovePodSandboxRequest, RemovePodSandboxResponse,
      SandboxRemove)
ROUTE(RuntimeServiceImpl, PodSandboxStatus, PodSandboxStatusRequest, PodSandboxStatusResponse,
      SandboxStatus)
ROUTE_WIRE(RuntimeServiceImpl, ListPodSandbox, ListPodSandboxRequest, SandboxList)

grpc::Status RuntimeServiceImpl::StreamPodSandboxes(
    grpc::ServerContext*, const v1::StreamPodSandboxesRequest* req,
    grpc::ServerWriter<v1::StreamPodSandboxesResponse>* writer) {
  return Serve("StreamPodSandboxes", *req, [&] {
    return SandboxesStream(rt_, *req,
                           [&](const v1::StreamPodSandboxesResponse& r) { return writer->Write(r); });
  });
}
ROUTE(RuntimeServiceImpl, CreateContainer, CreateContainerRequest, CreateContainerResponse,
      ContainerCreate)
ROUTE(RuntimeServiceImpl, StartContainer, StartContainerRequest, StartContainerResponse,
      ContainerStart)
ROUTE(RuntimeServiceImpl, StopContainer, StopContainerRequest, StopContainerResponse, ContainerStop)
ROUTE(RuntimeServiceImpl, RemoveContainer, RemoveContainerRequest, RemoveContainerResponse,
      ContainerRemove)
ROUTE_WIRE(RuntimeServiceImpl, ListContainers, ListContainersRequest, ContainerList)
grpc::Status RuntimeServiceImpl::StreamContainers(
    grpc::ServerContext*, const v1::StreamContainersRequest* req,
    grpc::ServerWriter<v1::StreamContainersResponse>* writer) {
  return Serve("StreamContainers", *req, [&] {
    return ContainersStream(rt_, *req,
                            [&](const v1::StreamContainersResponse& r) { return writer->Write(r); });
  });
}
ROUTE(RuntimeServiceImpl, ContainerStatus, ContainerStatusRequest, ContainerStatusResponse,
      ContainerStatusGet)
ROUTE(RuntimeServiceImpl, UpdateContainerResources, UpdateContainerResourcesRequest,
      UpdateContainerResourcesResponse, ContainerUpdateResources)
ROUTE(RuntimeServiceImpl, ReopenContainerLog, ReopenContainerLogRequest,
      ReopenContainerLogResponse, ContainerReopenLog)
ROUTE(RuntimeServiceImpl, ExecSync, ExecSyncRequest, ExecSyncResponse, ContainerExecSync)
ROUTE(RuntimeServiceImpl, Exec, ExecRequest, ExecResponse, ContainerExec)
ROUTE(RuntimeServiceImpl, Attach, AttachRequest, AttachResponse, ContainerAttach)
ROUTE(RuntimeServiceImpl, PortForward, PortForwardRequest, PortForwardResponse, PodPortForward)
ROUTE(RuntimeServiceImpl, ContainerStats, ContainerStatsRequest, ContainerStatsResponse, ContainerStatsGet)
ROUTE(RuntimeServiceImpl, ListContainerStats, ListContainerStatsRequest, ListContainerStatsResponse,
      ContainerStatsList)
grpc::Status RuntimeServiceImpl::StreamContainerStats(
    grpc::ServerContext*, const v1::StreamContainerStatsRequest* req,
    grpc::ServerWriter<v1::StreamContainerStatsResponse>* writer) {
  return Serve("StreamContainerStats", *req, [&] {
    return ContainerStatsStream(rt_, *req,
                                [&](const v1::StreamContainerStatsResponse& r) { return writer->Write(r); });
  });
}
ROUTE(RuntimeServiceImpl, PodSandboxStats, PodSandboxStatsRequest, PodSandboxStatsResponse, SandboxStatsGet)
ROUTE(RuntimeServiceImpl, ListPodSandboxStats, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse,
      SandboxStatsList)
grpc::Status RuntimeServiceImpl::StreamPodSandboxStats(
    grpc::ServerContext*, const v1::StreamPodSandboxStatsRequest* req,
    grpc::ServerWriter<v1::StreamPodSandboxStatsResponse>* writer) {
  return Serve("StreamPodSandboxStats", *req, [&] {
    return SandboxStatsStream(rt_, *req,
                              [&](const v1::StreamPodSandboxStatsResponse& r) { return writer->Write(r); });
  });
}
ROUTE(RuntimeServiceImpl, UpdateRuntimeConfig, UpdateRuntimeConfigRequest,
      UpdateRuntimeConfigResponse, RuntimeConfigUpdate)
ROUTE(RuntimeServiceImpl, Status, StatusRequest, StatusResponse, RuntimeStatus)
ROUTE(RuntimeServiceImpl, CheckpointContainer, CheckpointContainerRequest, CheckpointContainerResponse,
      CheckpointContainerRefused)
grpc::Status RuntimeServiceImpl::GetContainerEvents(grpc::ServerContext* ctx, const v1::GetEventsRequest* req,
                                                    grpc::ServerWriter<v1::ContainerEventResponse>* writer) {
  return Serve("GetContainerEvents", *req, [&]() -> absl::Status {
    std::shared_ptr<EventHub::Subscription> events = rt_.events().Subscribe();
    absl::Status st;
    while (st.ok() && !ctx->IsCancelled()) {
      std::optional<v1::ContainerEventResponse> e = events->Next(absl::Milliseconds(200));
      if (events->overflowed()) {
        st = absl::ResourceExhaustedError(absl::StrCat("GetContainerEvents: the client fell ",
                                                       rt_.events().max_queued(), " events behind"));
      } else if (e && !writer->Write(*e)) {
        break;  // the client went away
      }
    }
    rt_.events().Unsubscribe(events);
    return st;
  });
}
ROUTE(RuntimeServiceImpl, ListMetricDescriptors, ListMetricDescriptorsRequest, ListMetricDescriptorsResponse,
      MetricDescriptorsList)
ROUTE(RuntimeServiceImpl, ListPodSandboxMetrics, ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse,
      SandboxMetricsList)
grpc::Status RuntimeServiceImpl::StreamPodSandboxMetrics(
    grpc::ServerContext*, const v1::StreamPodSandboxMetricsRequest* req,
    grpc::ServerWriter<v1::StreamPodSandboxMetricsResponse>* writer) {
  return Serve("StreamPodSandboxMetrics", *req, [&] {
    return SandboxMetricsStream(rt_, *req,
                                [&](const v1::StreamPodSandboxMetricsResponse& r) { return writer->Write(r); });
  });
}
ROUTE(RuntimeServiceImpl, RuntimeConfig, RuntimeConfigRequest, RuntimeConfigResponse,
      RuntimeConfigGet)
ROUTE(RuntimeServiceImpl, UpdatePodSandboxResources, UpdatePodSandboxResourcesRequest,
      UpdatePodSandboxResourcesResponse, SandboxUpdateResources)

// ImageService
ROUTE(ImageServiceImpl, ListImages, ListImagesRequest, ListImagesResponse, ImageList)
ROUTE(ImageServiceImpl, ImageStatus, ImageStatusRequest, ImageStatusResponse, ImageStatusGet)
grpc::Status ImageServiceImpl::PullImage(grpc::ServerContext* ctx, const v1::PullImageRequest* req,
                                         v1::PullImageResponse* resp) {
  image::PullCaller caller;
  if (auto deadline = ctx->deadline(); deadline != std::chrono::system_clock::time_point::max()) {
    caller.deadline = absl::FromChrono(deadline);
  }
  caller.cancelled = [ctx] { return ctx->IsCancelled(); };
  return Serve("PullImage", *req, [&] { return ImagePull(rt_, *req, resp, caller); });
}
ROUTE(ImageServiceImpl, RemoveImage, RemoveImageRequest, RemoveImageResponse, ImageRemove)
ROUTE(ImageServiceImpl, ImageFsInfo, ImageFsInfoRequest, ImageFsInfoResponse, ImageFsInfoGet)

grpc::Status ImageServiceImpl::StreamImages(grpc::ServerContext*, const v1::StreamImagesRequest* req,
                                            grpc::ServerWriter<v1::StreamImagesResponse>* writer) {
  return Serve("StreamImages", *req, [&] {
    return ImagesStream(rt_, *req, [&](const v1::StreamImagesResponse& r) { return writer->Write(r); });
  });
}

}  // namespace crius::cri
