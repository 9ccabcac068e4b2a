// The CRI handlers, one file per RPC (object_verb.cc). Each validates its
// request, does the work and returns absl::Status; the services in
// runtime_service.cc / image_service.cc route gRPC calls here via Serve().
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "api.pb.h"
#include "cri/runtime.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

absl::Status RuntimeVersion(Runtime& rt, const v1::VersionRequest& req, v1::VersionResponse* resp);
absl::Status RuntimeStatus(Runtime& rt, const v1::StatusRequest& req, v1::StatusResponse* resp);
absl::Status RuntimeConfigGet(Runtime& rt, const v1::RuntimeConfigRequest& req,
                              v1::RuntimeConfigResponse* resp);
absl::Status RuntimeConfigUpdate(Runtime& rt, const v1::UpdateRuntimeConfigRequest& req,
                                 v1::UpdateRuntimeConfigResponse* resp);

absl::Status SandboxRun(Runtime& rt, const v1::RunPodSandboxRequest& req,
                        v1::RunPodSandboxResponse* resp);
absl::Status SandboxStop(Runtime& rt, const v1::StopPodSandboxRequest& req,
                         v1::StopPodSandboxResponse* resp);
absl::Status SandboxRemove(Runtime& rt, const v1::RemovePodSandboxRequest& req,
                           v1::RemovePodSandboxResponse* resp);
absl::Status SandboxStatus(Runtime& rt, const v1::PodSandboxStatusRequest& req,
                           v1::PodSandboxStatusResponse* resp);
// ListPodSandboxResponse in its wire form, from each pod's kept entry.
absl::Status SandboxList(Runtime& rt, const v1::ListPodSandboxRequest& req, std::string* wire);
absl::Status SandboxesStream(Runtime& rt, const v1::StreamPodSandboxesRequest& req,
                             const std::function<bool(const v1::StreamPodSandboxesResponse&)>& send);

absl::Status ContainerCreate(Runtime& rt, const v1::CreateContainerRequest& req,
                             v1::CreateContainerResponse* resp);
absl::Status ContainerStart(Runtime& rt, const v1::StartContainerRequest& req,
                            v1::StartContainerResponse* resp);
absl::Status ContainerStop(Runtime& rt, const v1::StopContainerRequest& req,
                           v1::StopContainerResponse* resp);
absl::Status ContainerRemove(Runtime& rt, const v1::RemoveContainerRequest& req,
                             v1::RemoveContainerResponse* resp);
absl::Status ContainerStatusGet(Runtime& rt, const v1::ContainerStatusRequest& req,
                                v1::ContainerStatusResponse* resp);
// ListContainersResponse in its wire form, from each container's kept entry.
absl::Status ContainerList(Runtime& rt, const v1::ListContainersRequest& req, std::string* wire);
absl::Status ContainersStream(Runtime& rt, const v1::StreamContainersRequest& req,
                              const std::function<bool(const v1::StreamContainersResponse&)>& send);
absl::Status ContainerUpdateResources(Runtime& rt, const v1::UpdateContainerResourcesRequest& req,
                                      v1::UpdateContainerResourcesResponse* resp);
absl::Status ContainerReopenLog(Runtime& rt, const v1::ReopenContainerLogRequest& req,
                                v1::ReopenContainerLogResponse* resp);

absl::Status ContainerExecSync(Runtime& rt, const v1::ExecSyncRequest& req, v1::ExecSyncResponse* resp);
absl::Status ContainerExec(Runtime& rt, const v1::ExecRequest& req, v1::ExecResponse* resp);
absl::Status ContainerAttach(Runtime& rt, const v1::AttachRequest& req, v1::AttachResponse* resp);
absl::Status SandboxUpdateResources(Runtime& rt, const v1::UpdatePodSandboxResourcesRequest& req,
                                    v1::UpdatePodSandboxResourcesResponse* resp);
absl::Status CheckpointContainerRefused(Runtime& rt, const v1::CheckpointContainerRequest& req,
                                        v1::CheckpointContainerResponse* resp);
absl::Status MetricDescriptorsList(Runtime& rt, const v1::ListMetricDescriptorsRequest& req,
                                   v1::ListMetricDescriptorsResponse* resp);
absl::Status SandboxMetricsList(Runtime& rt, const v1::ListPodSandboxMetricsRequest& req,
                                v1::ListPodSandboxMetricsResponse* resp);
absl::Status SandboxMetricsStream(Runtime& rt, const v1::StreamPodSandboxMetricsRequest& req,
                                  const std::function<bool(const v1::StreamPodSandboxMetricsResponse&)>& send);
absl::Status PodPortForward(Runtime& rt, const v1::PortForwardRequest& req, v1::PortForwardResponse* resp);
absl::Status ContainerStatsGet(Runtime& rt, const v1::ContainerStatsRequest& req, v1::ContainerStatsResponse* resp);
absl::Status ContainerStatsList(Runtime& rt, const v1::ListContainerStatsRequest& req,
                                v1::ListContainerStatsResponse* resp);
absl::Status ContainerStatsStream(Runtime& rt, const v1::StreamContainerStatsRequest& req,
                                  const std::function<bool(const v1::StreamContainerStatsResponse&)>& send);
absl::Status SandboxStatsGet(Runtime& rt, const v1::PodSandboxStatsRequest& req, v1::PodSandboxStatsResponse* resp);
absl::Status SandboxStatsList(Runtime& rt, const v1::ListPodSandboxStatsRequest& req,
                              v1::ListPodSandboxStatsResponse* resp);
absl::Status SandboxStatsStream(Runtime& rt, const v1::StreamPodSandboxStatsRequest& req,
                                const std::function<bool(const v1::StreamPodSandboxStatsResponse&)>& send);

// Ends when the pull does or when `caller` stops waiting (its deadline).
absl::Status ImagePull(Runtime& rt, const v1::PullImageRequest& req, v1::PullImageResponse* resp,
                       const image::PullCaller& caller);
absl::Status ImageList(Runtime& rt, const v1::ListImagesRequest& req, v1::ListImagesResponse* resp);
absl::Status ImagesStream(Runtime& rt, const v1::StreamImagesRequest& req,
                          const std::function<bool(const v1::StreamImagesResponse&)>& send);
absl::Status ImageStatusGet(Runtime& rt, const v1::ImageStatusRequest& req,
                         v1::ImageStatusResponse* resp);
absl::Status ImageRemove(Runtime& rt, const v1::RemoveImageRequest& req,
                         v1::RemoveImageResponse* resp);
absl::Status ImageFsInfoGet(Runtime& rt, const v1::ImageFsInfoRequest& req,
                         v1::ImageFsInfoResponse* resp);

}  // namespace crius::cri
