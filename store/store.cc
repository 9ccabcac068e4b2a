#include "store/store.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius::store {
namespace {

// Each entry migrates the schema from version i to i+1, in one transaction.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
    CREATE TABLE settings (
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL
    );
    CREATE TABLE pods (
      id              TEXT PRIMARY KEY,
      name            TEXT NOT NULL UNIQUE,
      state           TEXT NOT NULL,
      runtime_handler TEXT NOT NULL,
      created_at_ns   INTEGER NOT NULL,
      config          BLOB NOT NULL,
      extra           TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE containers (
      id             TEXT PRIMARY KEY,
      pod_id         TEXT NOT NULL REFERENCES pods(id) ON DELETE CASCADE,
      name           TEXT NOT NULL UNIQUE,
      state          TEXT NOT NULL,
      created_at_ns  INTEGER NOT NULL,
      started_at_ns  INTEGER NOT NULL DEFAULT 0,
      finished_at_ns INTEGER NOT NULL DEFAULT 0,
      exit_code      INTEGER NOT NULL DEFAULT 0,
      reason         TEXT NOT NULL DEFAULT '',
      message        TEXT NOT NULL DEFAULT '',
      image_ref      TEXT NOT NULL DEFAULT '',
      config         BLOB NOT NULL,
      extra          TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX containers_by_pod ON containers(pod_id);
    CREATE TABLE images (
      id            TEXT PRIMARY KEY,
      repo_tags     TEXT NOT NULL,
      repo_digests  TEXT NOT NULL,
      size          INTEGER NOT NULL,
      spec          TEXT NOT NULL,
      pinned        INTEGER NOT NULL DEFAULT 0,
      created_at_ns INTEGER NOT NULL
    );
    )sql",
    // 1 -> 2
    R"sql(
    CREATE TABLE cgroup_parents (
      path TEXT PRIMARY KEY
    );
    )sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

// A full or failing disk is named: the database file and the errno SQLite
// got from it ("database or disk is full (state database /x/state.db: No
// space left on device)"); an fsync that found no space is a full disk too.
absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  int code = sqlite3_errcode(db);
  absl::StatusCode status_code = absl::StatusCode::kInternal;
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) status_code = absl::StatusCode::kUnavailable;
  if (code == SQLITE_FULL) status_code = absl::StatusCode::kResourceExhausted;
  if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM ||
      code == SQLITE_IOERR) {
    status_code = absl::StatusCode::kFailedPrecondition;
  }
  std::string disk;
  if (code == SQLITE_FULL || code == SQLITE_IOERR) {
    const char* file = sqlite3_db_filename(db, "main");
    int err = sqlite3_system_errno(db);
    if (err == ENOSPC || err == EDQUOT) status_code = absl::StatusCode::kResourceExhausted;
    disk = absl::StrCat(" (state database ", file ? file : "", err != 0 ? ": " : "",
                        err != 0 ? std::strerror(err) : "", ")");
  }
  return absl::Status(status_code, absl::StrCat(what, ": ", sqlite3_errmsg(db), disk));
}

// Space for the write-ahead log and its index, taken while the disk has it:
// once the disk is full the records that free space (kubelet's image GC,
// RemovePodSandbox) still fit, and SQLite never touches a page of the
// mmap'ed index that has no block (SIGBUS: criusd would die). KEEP_SIZE:
// SQLite sees the files it wrote, their growth lands in the reserve. Best
// effort: a filesystem without fallocate has none.
void ReserveWal(const std::string& path) {
  // The log between two automatic checkpoints, and the index of twice that.
  for (const auto& [suffix, size] : {std::pair{"-wal", off_t{4} << 20}, std::pair{"-shm", off_t{64} << 10}}) {
    UniqueFd fd(::open(absl::StrCat(path, suffix).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (fd) (void)::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 0, size);
  }
}

// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }

  std::string Text(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string ToJsonArray(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

std::vector<std::string> FromJsonArray(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& item : j) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

constexpr const char* kPodColumns = "id, name, state, runtime_handler, created_at_ns, config, extra";
constexpr const char* kContainerColumns =
    "id, pod_id, name, state, created_at_ns, started_at_ns, finished_at_ns, exit_code, reason, "
    "message, image_ref, config, extra";
constexpr const char* kImageColumns =
    "id, repo_tags, repo_digests, size, spec, pinned, created_at_ns";

PodRecord ReadPod(const Stmt& s) {
  return PodRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Text(5), s.Text(6)};
}

ContainerRecord ReadContainer(const Stmt& s) {
  ContainerRecord c;
  c.id = s.Text(0);
  c.pod_id = s.Text(1);
  c.name = s.Text(2);
  c.state = s.Text(3);
  c.created_at_ns = s.Int(4);
  c.started_at_ns = s.Int(5);
  c.finished_at_ns = s.Int(6);
  c.exit_code = static_cast<int32_t>(s.Int(7));
  c.reason = s.Text(8);
  c.message = s.Text(9);
  c.image_ref = s.Text(10);
  c.config = s.Text(11);
  c.extra = s.Text(12);
  return c;
}

ImageRecord ReadImage(const Stmt& s) {
  ImageRecord i;
  i.id = s.Text(0);
  i.repo_tags = FromJsonArray(s.Text(1));
  i.repo_digests = FromJsonArray(s.Text(2));
  i.size = s.Int(3);
  i.spec = s.Text(4);
  i.pinned = s.Int(5) != 0;
  i.created_at_ns = s.Int(6);
  return i;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, Synchronous sync) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st = SqliteError(db, absl::StrCat("open state database ", path));
    sqlite3_close(db);
    return st;
  }
  std::unique_ptr<Store> store(new Store(path, db));
  sqlite3_busy_timeout(db, 5000);
  // A database of a newer schema is refused before anything writes to it.
  CRIUS_RETURN_IF_ERROR(store->CheckVersion());
  // WAL: readers never block the writer, and a commit is one append.
  CRIUS_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  CRIUS_RETURN_IF_ERROR(store->Exec(sync == Synchronous::kFull ? "PRAGMA synchronous=FULL"
                                                               : "PRAGMA synchronous=NORMAL"));
  CRIUS_RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  CRIUS_RETURN_IF_ERROR(store->Migrate());
  ReserveWal(path);
  return store;
}

Store::~Store() { sqlite3_close(db_); }

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::FailedPreconditionError(
        absl::StrCat("state database ", path_, ": ", msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Store::ReadVersion() {
  Stmt get(db_, "PRAGMA user_version");
  if (!get.ok() || get.Step() != SQLITE_ROW) {
    return SqliteError(db_, absl::StrCat("read schema version of ", path_));
  }
  return static_cast<int>(get.Int(0));
}

absl::Status Store::CheckVersion() {
  CRIUS_ASSIGN_OR_RETURN(int version, ReadVersion());
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state database ", path_, " has schema version ", version,
        ", newer than the version this criusd understands (", kSchemaVersion,
        "); run the criusd that wrote it, or move the database away"));
  }
  return absl::OkStatus();
}

absl::Status Store::Migrate() {
  CRIUS_ASSIGN_OR_RETURN(int version, ReadVersion());
  for (; version < kSchemaVersion; ++version) {
    std::string sql = absl::StrCat("BEGIN IMMEDIATE;", kMigrations[version],
                                   "PRAGMA user_version=", version + 1, "; COMMIT;");
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return absl::FailedPreconditionError(absl::StrCat(
          "migrate state database ", path_, " to schema ", version + 1, ": ", msg));
    }
  }
  return absl::OkStatus();
}

absl::Status Store::PutSetting(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "INSERT INTO settings(key, value) VALUES(?1, ?2) "
              "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!s.ok() || s.Bind(1, key).Bind(2, value).Step() != SQLITE_DONE) {
    return SqliteError(db_, absl::StrCat("store setting ", key));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Store::GetSetting(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT value FROM settings WHERE key = ?1");
  if (!s.ok()) return SqliteError(db_, absl::StrCat("read setting ", key));
  int rc = s.Bind(1, key).Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return SqliteError(db_, absl::StrCat("read setting ", key));
  return std::optional<std::string>(s.Text(0));
}

absl::Status Store::PutPod(const PodRecord& p) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "INSERT INTO pods(id, name, state, runtime_handler, created_at_ns, config, extra) "
              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
              "name = excluded.name, state = excluded.state, "
              "runtime_handler = excluded.runtime_handler, created_at_ns = excluded.created_at_ns, "
              "config = excluded.config, extra = excluded.extra");
  if (!s.ok()) return SqliteError(db_, absl::StrCat("store pod ", p.id));
  s.Bind(1, p.id).Bind(2, p.name).Bind(3, p.state).Bind(4, p.runtime_handler);
  s.Bind(5, p.created_at_ns).BindBlob(6, p.config).Bind(7, p.extra.empty() ? "{}" : p.extra);
  if (s.Step() != SQLITE_DONE) return SqliteError(db_, absl::StrCat("store pod ", p.id));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<PodRecord>> Store::GetPod(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = absl::StrCat("SELECT ", kPodColumns, " FROM pods WHERE id = ?1");
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return SqliteError(db_, absl::StrCat("read pod ", id));
  int rc = s.Bind(1, id).Step();
  if (rc == SQLITE_DONE) return std::optional<PodRecord>();
  if (rc != SQLITE_ROW) return SqliteError(db_, absl::StrCat("read pod ", id));
  return std::optional<PodRecord>(ReadPod(s));
}

absl::StatusOr<std::vector<PodRecord>> Store::ListPods() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = absl::StrCat("SELECT ", kPodColumns, " FROM pods ORDER BY created_at_ns");
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return SqliteError(db_, "list pods");
  std::vector<PodRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadPod(s));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list pods");
  return out;
}

absl::Status Store::DeletePod(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  // Containers go with their pod (ON DELETE CASCADE), in the same statement.
  Stmt s(db_, "DELETE FROM pods WHERE id = ?1");
  if (!s.ok() || s.Bind(1, id).Step() != SQLITE_DONE) {
    return SqliteError(db_, absl::StrCat("delete pod ", id));
  }
  return absl::OkStatus();
}

absl::Status Store::PutContainer(const ContainerRecord& c) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_,
         "INSERT INTO containers(id, pod_id, name, state, created_at_ns, started_at_ns, "
         "finished_at_ns, exit_code, reason, message, image_ref, config, extra) "
         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
         "ON CONFLICT(id) DO UPDATE SET pod_id = excluded.pod_id, name = excluded.name, "
         "state = excluded.state, created_at_ns = excluded.created_at_ns, "
         "started_at_ns = excluded.started_at_ns, finished_at_ns = excluded.finished_at_ns, "
         "exit_code = excluded.exit_code, reason = excluded.reason, message = excluded.message, "
         "image_ref = excluded.image_ref, config = excluded.config, extra = excluded.extra");
  if (!s.ok()) return SqliteError(db_, absl::StrCat("store container ", c.id));
  s.Bind(1, c.id).Bind(2, c.pod_id).Bind(3, c.name).Bind(4, c.state).Bind(5, c.created_at_ns);
  s.Bind(6, c.started_at_ns).Bind(7, c.finished_at_ns).Bind(8, static_cast<int64_t>(c.exit_code));
  s.Bind(9, c.reason).Bind(10, c.message).Bind(11, c.image_ref).BindBlob(12, c.config);
  s.Bind(13, c.extra.empty() ? "{}" : c.extra);
  if (s.Step() != SQLITE_DONE) return SqliteError(db_, absl::StrCat("store container ", c.id));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ContainerRecord>> Store::GetContainer(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = absl::StrCat("SELECT ", kContainerColumns, " FROM containers WHERE id = ?1");
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return SqliteError(db_, absl::StrCat("read container ", id));
  int rc = s.Bind(1, id).Step();
  if (rc == SQLITE_DONE) return std::optional<ContainerRecord>();
  if (rc != SQLITE_ROW) return SqliteError(db_, absl::StrCat("read container ", id));
  return std::optional<ContainerRecord>(ReadContainer(s));
}

absl::StatusOr<std::vector<ContainerRecord>> Store::ListContainers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql =
      absl::StrCat("SELECT ", kContainerColumns, " FROM containers ORDER BY created_at_ns");
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return SqliteError(db_, "list containers");
  std::vector<ContainerRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadContainer(s));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list containers");
  return out;
}

absl::Status Store::DeleteContainer(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "DELETE FROM containers WHERE id = ?1");
  if (!s.ok() || s.Bind(1, id).Step() != SQLITE_DONE) {
    return SqliteError(db_, absl::StrCat("delete container ", id));
  }
  return absl::OkStatus();
}

absl::Status Store::PutImage(const ImageRecord& i) { return PutImages({i}); }

absl::Status Store::InTransaction(const std::string& what, absl::FunctionRef<absl::Status()> body) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(db_, what);
  absl::Status st = body();
  if (st.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) st = SqliteError(db_, what);
  if (!st.ok()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return st;
}

absl::Status Store::PutImages(const std::vector<ImageRecord>& images) {
  if (images.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(absl::StrCat("store image ", images.front().id), [&]() -> absl::Status {
    for (const ImageRecord& i : images) CRIUS_RETURN_IF_ERROR(PutImageLocked(i));
    return absl::OkStatus();
  });
}

absl::Status Store::PutImageLocked(const ImageRecord& i) {
  Stmt s(db_, "INSERT INTO images(id, repo_tags, repo_digests, size, spec, pinned, created_at_ns) "
              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
              "repo_tags = excluded.repo_tags, repo_digests = excluded.repo_digests, "
              "size = excluded.size, spec = excluded.spec, pinned = excluded.pinned, "
              "created_at_ns = excluded.created_at_ns");
  if (!s.ok()) return SqliteError(db_, absl::StrCat("store image ", i.id));
  s.Bind(1, i.id).Bind(2, ToJsonArray(i.repo_tags)).Bind(3, ToJsonArray(i.repo_digests));
  s.Bind(4, i.size).Bind(5, i.spec).Bind(6, static_cast<int64_t>(i.pinned)).Bind(7, i.created_at_ns);
  if (s.Step() != SQLITE_DONE) return SqliteError(db_, absl::StrCat("store image ", i.id));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ImageRecord>> Store::GetImage(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = absl::StrCat("SELECT ", kImageColumns, " FROM images WHERE id = ?1");
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return SqliteError(db_, absl::StrCat("read image ", id));
  int rc = s.Bind(1, id).Step();
  if (rc == SQLITE_DONE) return std::optional<ImageRecord>();
  if (rc != SQLITE_ROW) return SqliteError(db_, absl::StrCat("read image ", id));
  return std::optional<ImageRecord>(ReadImage(s));
}

absl::StatusOr<std::vector<ImageRecord>> Store::ListImages() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = absl::StrCat("SELECT ", kImageColumns, " FROM images ORDER BY created_at_ns");
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return SqliteError(db_, "list images");
  std::vector<ImageRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadImage(s));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list images");
  return out;
}

absl::Status Store::DeleteImage(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "DELETE FROM images WHERE id = ?1");
  if (!s.ok() || s.Bind(1, id).Step() != SQLITE_DONE) {
    return SqliteError(db_, absl::StrCat("delete image ", id));
  }
  return absl::OkStatus();
}

absl::Status Store::AddCgroupParents(const std::vector<std::string>& paths) {
  if (paths.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return InTransaction(absl::StrCat("record cgroup parent ", paths.front()), [&]() -> absl::Status {
    for (const std::string& path : paths) {
      Stmt s(db_, "INSERT OR IGNORE INTO cgroup_parents(path) VALUES(?1)");
      if (!s.ok() || s.Bind(1, path).Step() != SQLITE_DONE) {
        return SqliteError(db_, absl::StrCat("record cgroup parent ", path));
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> Store::ListCgroupParents() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "SELECT path FROM cgroup_parents ORDER BY path");
  if (!s.ok()) return SqliteError(db_, "list cgroup parents");
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(s.Text(0));
  if (rc != SQLITE_DONE) return SqliteError(db_, "list cgroup parents");
  return out;
}

absl::Status Store::DeleteCgroupParent(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "DELETE FROM cgroup_parents WHERE path = ?1");
  if (!s.ok() || s.Bind(1, path).Step() != SQLITE_DONE) {
    return SqliteError(db_, absl::StrCat("forget cgroup parent ", path));
  }
  return absl::OkStatus();
}

}  // namespace crius::store
