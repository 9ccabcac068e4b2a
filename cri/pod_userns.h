// The pod's user namespace, as kubelet asks for it (userns_options of the
// pod's and each container's NamespaceOption, and the uidMappings and
// gidMappings of its mounts: KEP-127).
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api.pb.h"
#include "sandbox/userns.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

// No user namespace (empty mappings) for mode NODE or no userns_options
// (kubelets before user namespaces); the ID mappings for mode POD. Bad
// options are InvalidArgument naming the field under `field` (the
// NamespaceOption's).
absl::StatusOr<sandbox::IdMappings> PodIdMappings(const v1::NamespaceOption& ns, absl::string_view field);

// A container's userns_options, when it has any, must be the pod's.
absl::Status CheckContainerUserns(const v1::NamespaceOption& container, const v1::NamespaceOption& pod,
                                  absl::string_view field);

// Whether CRI mount `m` (field: its name in errors) is an idmapped mount: it
// is when it has mappings, which must be the pod's.
absl::StatusOr<bool> MountIsIdmapped(const v1::Mount& m, const sandbox::IdMappings& pod, absl::string_view field);

}  // namespace crius::cri
