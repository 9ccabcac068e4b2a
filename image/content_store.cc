#include "image/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "image/reference.h"

namespace crius::image {
namespace {

std::atomic<uint64_t> g_ingest_seq{0};

std::string HexOf(const unsigned char* bytes, unsigned int n) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), n));
}

}  // namespace

std::string Sha256Digest(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return absl::StrCat("sha256:", HexOf(md, n));
}

BlobWriter::BlobWriter(std::string digest, int64_t expected_size, std::string ingest_path,
                       std::string final_path, UniqueFd fd)
    : digest_(std::move(digest)),
      expected_size_(expected_size),
      ingest_path_(std::move(ingest_path)),
      final_path_(std::move(final_path)),
      fd_(std::move(fd)),
      sha_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
}

BlobWriter::~BlobWriter() {
  EVP_MD_CTX_free(sha_);
  if (!committed_) ::unlink(ingest_path_.c_str());
}

absl::Status BlobWriter::Write(absl::string_view data) {
  if (expected_size_ >= 0 && written_ + data.size() > static_cast<uint64_t>(expected_size_)) {
    return absl::DataLossError(absl::StrCat("blob ", digest_, " is larger than the ",
                                            expected_size_, " bytes its descriptor gives"));
  }
  EVP_DigestUpdate(sha_, data.data(), data.size());
  while (!data.empty()) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, absl::StrCat("write ", ingest_path_));
    data.remove_prefix(static_cast<size_t>(n));
    written_ += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status BlobWriter::Commit() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(sha_, md, &n);
  std::string got = absl::StrCat("sha256:", HexOf(md, n));
  if (got != digest_) {
    return absl::DataLossError(
        absl::StrCat("digest mismatch: expected ", digest_, ", content has ", got));
  }
  if (expected_size_ >= 0 && written_ != static_cast<uint64_t>(expected_size_)) {
    return absl::DataLossError(absl::StrCat("blob ", digest_, " has ", written_,
                                            " bytes, its descriptor says ", expected_size_));
  }
  if (::fsync(fd_.get()) != 0) return ErrnoError(errno, absl::StrCat("fsync ", ingest_path_));
  if (::rename(ingest_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoError(errno, absl::StrCat("rename ", ingest_path_, " to ", final_path_));
  }
  committed_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(const std::string& root) {
  std::string dir = absl::StrCat(root, "/content");
  for (const char* sub : {"/blobs/sha256", "/ingest"}) {
    absl::StatusOr<std::vector<std::string>> made = MakeDirs(dir + sub, 0700);
    if (!made.ok()) return Annotate(made.status(), "create content store");
  }
  // Whatever is in ingest/ was being written when criusd stopped.
  std::string ingest = dir + "/ingest";
  if (DIR* d = ::opendir(ingest.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ::unlinkat(dirfd(d), e->d_name, 0);
    }
    ::closedir(d);
  }
  return std::unique_ptr<ContentStore>(new ContentStore(dir));
}

std::string ContentStore::PathOf(absl::string_view digest) const {
  absl::string_view hex = digest;
  hex.remove_prefix(std::min<size_t>(hex.size(), 7));  // "sha256:"
  return absl::StrCat(dir_, "/blobs/sha256/", hex);
}

bool ContentStore::Has(absl::string_view digest) const {
  if (!IsDigest(digest)) return false;
  struct stat st;
  return ::stat(PathOf(digest).c_str(), &st) == 0;
}

absl::StatusOr<std::string> ContentStore::Read(absl::string_view digest) const {
  if (!IsDigest(digest)) return absl::InvalidArgumentError(absl::StrCat("not a digest: ", digest));
  std::string path = PathOf(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError(errno, absl::StrCat("open blob ", digest));
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  if (n < 0) return ErrnoError(errno, absl::StrCat("read blob ", digest));
  return out;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> ContentStore::Writer(absl::string_view digest,
                                                                 int64_t expected_size) {
  if (!IsDigest(digest)) return absl::InvalidArgumentError(absl::StrCat("not a digest: ", digest));
  std::string ingest = absl::StrCat(dir_, "/ingest/", digest.substr(7), ".", ::getpid(), ".",
                                    g_ingest_seq.fetch_add(1));
  UniqueFd fd(::open(ingest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError(errno, absl::StrCat("create ", ingest));
  return std::unique_ptr<BlobWriter>(new BlobWriter(std::string(digest), expected_size, ingest,
                                                    PathOf(digest), std::move(fd)));
}

absl::Status ContentStore::Put(absl::string_view digest, absl::string_view data) {
  CRIUS_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> w,
                         Writer(digest, static_cast<int64_t>(data.size())));
  CRIUS_RETURN_IF_ERROR(w->Write(data));
  return w->Commit();
}

absl::Status ContentStore::Delete(absl::string_view digest) {
  if (!IsDigest(digest)) return absl::InvalidArgumentError(absl::StrCat("not a digest: ", digest));
  if (::unlink(PathOf(digest).c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, absl::StrCat("delete blob ", digest));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ContentStore::List() const {
  std::string blobs = dir_ + "/blobs/sha256";
  DIR* d = ::opendir(blobs.c_str());
  if (d == nullptr) return ErrnoError(errno, absl::StrCat("list ", blobs));
  std::vector<std::string> out;
  while (struct dirent* e = ::readdir(d)) {
    std::string digest = absl::StrCat("sha256:", e->d_name);
    if (IsDigest(digest)) out.push_back(digest);
  }
  ::closedir(d);
  return out;
}

uint64_t ContentStore::UsedBytes() const {
  uint64_t total = 0;
  absl::StatusOr<std::vector<std::string>> all = List();
  if (!all.ok()) return 0;
  for (const std::string& digest : *all) {
    struct stat st;
    if (::stat(PathOf(digest).c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

}  // namespace crius::image
