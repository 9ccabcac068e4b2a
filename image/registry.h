// The OCI distribution API over libcurl: manifests and blobs, bearer-token
// and basic auth, mirrors, plain http only for hosts configured insecure, and
// https verified against the system CAs plus configured ones.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/content_store.h"
#include "image/manifest.h"
#include "image/pull_progress.h"
#include "image/reference.h"

namespace crius::image {

struct RegistryOptions {
  // Hosts ("host[:port]") reached over http instead of https.
  std::vector<std::string> insecure_hosts;
  // PEM files trusted besides the system CA bundle.
  std::vector<std::string> ca_files;
  // host -> endpoints ("http://127.0.0.1:5000") tried in order before the host.
  std::map<std::string, std::vector<std::string>> mirrors;
  long connect_timeout_s = 10;
  // A pull that receives no bytes for this long is cancelled; zero: never.
  absl::Duration progress_timeout = absl::Minutes(5);
};

struct Credentials {
  std::string username;
  std::string password;
  std::string registry_token;  // a bearer token to send as it is
  std::string identity_token;  // an OAuth2 refresh token for the token service
};

struct FetchedManifest {
  std::string body;
  std::string media_type;
  std::string digest;  // sha256 of body, checked against what was asked for
};

// One endpoint of a repository: "https://registry-1.docker.io" + "library/busybox".
struct Endpoint {
  std::string base;  // scheme://host[:port]
  std::string repository;
};

class Registry {
 public:
  // Reads the CA files now, so a bad one is a start-up error.
  static absl::StatusOr<std::unique_ptr<Registry>> Create(RegistryOptions options);
  ~Registry();

  // One HTTP exchange as the callbacks saw it.
  struct Response;

  // Where to look for `ref`, in order: its mirrors, then the host itself.
  std::vector<Endpoint> EndpointsFor(const Reference& ref) const;

  absl::Duration progress_timeout() const { return options_.progress_timeout; }

  // Every transfer below reports to `progress` (may be null) and stops when
  // it says the pull is abandoned or stalled.

  // GET the manifest `reference` (a tag or a digest) at `ep`. A digest
  // reference is verified against the body.
  absl::StatusOr<FetchedManifest> GetManifest(const Endpoint& ep, const std::string& reference,
                                              const Credentials& creds, PullProgress* progress);
  // Streams blob `d` into `writer`, which verifies it.
  absl::Status GetBlob(const Endpoint& ep, const Descriptor& d, BlobWriter& writer,
                       const Credentials& creds, PullProgress* progress);
  // A small blob (config) fetched and verified in memory.
  absl::StatusOr<std::string> GetSmallBlob(const Endpoint& ep, const Descriptor& d,
                                           const Credentials& creds, PullProgress* progress);

 private:
  explicit Registry(RegistryOptions options) : options_(std::move(options)) {}
  absl::StatusOr<Response> Get(const Endpoint& ep, const std::string& path,
                               const std::vector<std::string>& headers, const Credentials& creds,
                               BlobWriter* sink, size_t max_body, PullProgress* progress);
  absl::StatusOr<Response> Perform(const std::string& url, const std::vector<std::string>& headers,
                                   BlobWriter* sink, size_t max_body, const std::string& userpwd,
                                   const std::string& post_fields, PullProgress* progress);
  absl::StatusOr<std::string> FetchToken(const std::string& challenge, const Endpoint& ep,
                                         const Credentials& creds, PullProgress* progress);

  RegistryOptions options_;
  std::string ca_blob_;  // system bundle + configured CAs, PEM
  std::mutex mu_;
  std::map<std::string, std::string> tokens_;  // base + repository -> "Bearer ..."/"Basic ..."
};

}  // namespace crius::image
