// Durable state of criusd in SQLite: pods, containers, images and settings.
// Every write is committed (WAL, synchronous level from config) before the
// call returns, so the RPC that made it may report success.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace crius::store {

// The schema this build reads and writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 2;

struct PodRecord {
  std::string id;
  std::string name;  // the reserved name: name_namespace_uid_attempt
  std::string state;  // creating, ready, notready, stopping, unknown
  std::string runtime_handler;
  int64_t created_at_ns = 0;
  std::string config;  // serialized CRI PodSandboxConfig
  std::string extra;   // JSON: what the runtime learned (netns, monitor, ips)
};

struct ContainerRecord {
  std::string id;
  std::string pod_id;
  std::string name;  // the reserved name
  std::string state;  // creating, created, running, exited, unknown
  int64_t created_at_ns = 0;
  int64_t started_at_ns = 0;
  int64_t finished_at_ns = 0;
  int32_t exit_code = 0;
  std::string reason;
  std::string message;
  std::string image_ref;
  std::string config;  // serialized CRI ContainerConfig
  std::string extra;   // JSON
};

struct ImageRecord {
  std::string id;  // config digest
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  int64_t size = 0;
  std::string spec;  // JSON: the image config and manifest annotations
  bool pinned = false;
  int64_t created_at_ns = 0;
};

enum class Synchronous { kFull, kNormal };

class Store {
 public:
  // Opens (creating if needed) the database at `path` and migrates it to
  // kSchemaVersion. A database of a newer schema is refused.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path, Synchronous sync);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const { return kSchemaVersion; }

  absl::Status PutSetting(const std::string& key, const std::string& value);
  absl::StatusOr<std::optional<std::string>> GetSetting(const std::string& key);

  absl::Status PutPod(const PodRecord& pod);
  absl::StatusOr<std::optional<PodRecord>> GetPod(const std::string& id);
  absl::StatusOr<std::vector<PodRecord>> ListPods();
  // Removes the pod and its containers in one transaction.
  absl::Status DeletePod(const std::string& id);

  absl::Status PutContainer(const ContainerRecord& container);
  absl::StatusOr<std::optional<ContainerRecord>> GetContainer(const std::string& id);
  absl::StatusOr<std::vector<ContainerRecord>> ListContainers();
  absl::Status DeleteContainer(const std::string& id);

  absl::Status PutImage(const ImageRecord& image);
  // All of them or none, in one transaction.
  absl::Status PutImages(const std::vector<ImageRecord>& images);
  absl::StatusOr<std::optional<ImageRecord>> GetImage(const std::string& id);
  absl::StatusOr<std::vector<ImageRecord>> ListImages();
  absl::Status DeleteImage(const std::string& id);

  // The cgroups crius made to hold pods' cgroups (levels of a cgroup_parent
  // that were not there, and its own /crius): each is removed, and forgotten,
  // once the last pod in it has gone. Adding is one transaction.
  absl::Status AddCgroupParents(const std::vector<std::string>& paths);
  absl::StatusOr<std::vector<std::string>> ListCgroupParents();
  absl::Status DeleteCgroupParent(const std::string& path);

 private:
  Store(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::StatusOr<int> ReadVersion();
  absl::Status CheckVersion();
  absl::Status Migrate();
  absl::Status Exec(const char* sql);
  absl::Status PutImageLocked(const ImageRecord& image);  // mu_ held
  // BEGIN IMMEDIATE, body, COMMIT; ROLLBACK when either fails. mu_ held.
  absl::Status InTransaction(const std::string& what, absl::FunctionRef<absl::Status()> body);

  std::string path_;
  sqlite3* db_;
  std::mutex mu_;  // one connection, serialised
};

}  // namespace crius::store
