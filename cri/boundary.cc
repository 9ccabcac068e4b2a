#include "cri/boundary.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "common/log.h"
#include "metrics/metrics.h"

namespace crius::cri {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::string DescribeRequest(const google::protobuf::Message& request) {
  using google::protobuf::FieldDescriptor;
  const auto* desc = request.GetDescriptor();
  const auto* refl = request.GetReflection();
  std::vector<std::string> parts;
  for (int i = 0; i < desc->field_count(); ++i) {
    const FieldDescriptor* f = desc->field(i);
    if (f->is_repeated()) continue;
    if (f->type() == FieldDescriptor::TYPE_STRING && absl::EndsWith(f->name(), "_id")) {
      std::string v = refl->GetString(request, f);
      if (!v.empty()) parts.push_back(absl::StrCat(f->name(), "=", v));
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE && f->name() == "config" &&
               refl->HasField(request, f)) {
      // PodSandboxConfig / ContainerConfig: name the object by its metadata.
      const auto& config = refl->GetMessage(request, f);
      const auto* meta_field = config.GetDescriptor()->FindFieldByName("metadata");
      if (meta_field != nullptr && config.GetReflection()->HasField(config, meta_field)) {
        const auto& meta = config.GetReflection()->GetMessage(config, meta_field);
        const auto* name = meta.GetDescriptor()->FindFieldByName("name");
        if (name != nullptr) {
          parts.push_back(absl::StrCat("name=", meta.GetReflection()->GetString(meta, name)));
        }
      }
    }
  }
  return absl::StrJoin(parts, " ");
}

void RecordRpc(absl::string_view method, const google::protobuf::Message& request,
               const absl::Status& status, std::chrono::steady_clock::duration elapsed) {
  double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  if (metrics::Metrics* m = metrics::Current()) {
    m->ObserveRpc(method, status.code(), std::chrono::duration<double>(elapsed).count());
  }
  if (status.ok()) {
    LOG_DEBUG("rpc %s ok in %.3f ms %s", std::string(method), ms, DescribeRequest(request));
    return;
  }
  // Unimplemented and NotFound are routine answers to kubelet; the rest are
  // failures an operator may have to act on.
  bool routine = status.code() == absl::StatusCode::kNotFound ||
                 status.code() == absl::StatusCode::kUnimplemented;
  std::string ids = DescribeRequest(request);
  std::string line = absl::StrCat("rpc ", method, " failed: code=",
                                  absl::StatusCodeToString(status.code()), ids.empty() ? "" : " ",
                                  ids, " error=\"", status.message(), "\"");
  if (routine) {
    LOG_INFO("%s", line);
  } else {
    LOG_WARN("%s", line);
  }
}

}  // namespace crius::cri
