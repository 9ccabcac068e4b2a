// Blobs by digest: <root>/content/blobs/sha256/<hex>. A blob is written to
// <root>/content/ingest/ while its digest is computed, and only a blob whose
// digest and size match what was asked for is renamed into place, so the
// store never holds a partial or wrong blob under a digest.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace crius::image {

// Streams bytes into an ingest file and a SHA-256 context.
class BlobWriter {
 public:
  ~BlobWriter();  // an uncommitted writer removes its ingest file
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  absl::Status Write(absl::string_view data);
  uint64_t written() const { return written_; }
  // Verifies the digest (and the size, when one was expected), syncs and
  // moves the blob into place.
  absl::Status Commit();

 private:
  friend class ContentStore;
  BlobWriter(std::string digest, int64_t expected_size, std::string ingest_path,
             std::string final_path, UniqueFd fd);

  std::string digest_;
  int64_t expected_size_;
  std::string ingest_path_;
  std::string final_path_;
  UniqueFd fd_;
  EVP_MD_CTX* sha_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

class ContentStore {
 public:
  // Creates the directories and removes ingest files a crash left behind.
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(const std::string& root);

  bool Has(absl::string_view digest) const;
  std::string PathOf(absl::string_view digest) const;
  absl::StatusOr<std::string> Read(absl::string_view digest) const;
  // expected_size < 0: not known in advance.
  absl::StatusOr<std::unique_ptr<BlobWriter>> Writer(absl::string_view digest,
                                                     int64_t expected_size);
  // Writes a whole blob at once (manifests, configs).
  absl::Status Put(absl::string_view digest, absl::string_view data);
  absl::Status Delete(absl::string_view digest);
  // Digests of every blob held.
  absl::StatusOr<std::vector<std::string>> List() const;
  // Bytes used by blobs.
  uint64_t UsedBytes() const;
  const std::string& dir() const { return dir_; }

 private:
  explicit ContentStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;  // <root>/content
};

// "sha256:<hex>" of data.
std::string Sha256Digest(absl::string_view data);

}  // namespace crius::image
