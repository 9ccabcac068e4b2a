#include "image/registry.h"

#include <curl/curl.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/status.h"

namespace crius::image {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxConfigBytes = 32 << 20;
constexpr size_t kMaxTokenBytes = 1 << 20;
constexpr size_t kMaxErrorBody = 4096;
constexpr char kSystemCaBundle[] = "/etc/ssl/certs/ca-certificates.crt";

// Parses `Bearer realm="https://auth",service="registry",scope="repository:x:pull"`.
std::map<std::string, std::string> ChallengeParams(absl::string_view challenge) {
  std::map<std::string, std::string> out;
  size_t space = challenge.find(' ');
  absl::string_view rest = space == absl::string_view::npos ? "" : challenge.substr(space + 1);
  while (!rest.empty()) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    size_t eq = rest.find('=');
    if (eq == absl::string_view::npos) break;
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(0, eq)));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (absl::ConsumePrefix(&rest, "\"")) {
      size_t end = rest.find('"');
      value = std::string(rest.substr(0, end));
      rest.remove_prefix(end == absl::string_view::npos ? rest.size() : end + 1);
    } else {
      size_t end = rest.find(',');
      value = std::string(absl::StripAsciiWhitespace(rest.substr(0, end)));
      rest.remove_prefix(end == absl::string_view::npos ? rest.size() : end);
    }
    absl::ConsumePrefix(&rest, ",");
    out[key] = value;
  }
  return out;
}

std::string Escape(CURL* curl, const std::string& s) {
  char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

absl::Status TooLarge(const std::string& what, size_t limit, absl::string_view kind) {
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " is larger than the ", limit >> 20, " MiB ", kind, " may have"));
}

absl::Status HttpError(long status, const std::string& what, const std::string& body) {
  // Registries explain errors as {"errors":[{"code":..,"message":..}]}.
  std::string detail;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object() && j["errors"][0].value("message", nlohmann::json()).is_string()) {
    detail = absl::StrCat(": ", j["errors"][0]["message"].get<std::string>());
  }
  std::string msg = absl::StrCat(what, ": HTTP ", status, detail);
  if (status == 404) return absl::NotFoundError(msg);
  if (status == 401 || status == 403) return absl::PermissionDeniedError(msg);
  if (status == 429 || status >= 500) return absl::UnavailableError(msg);
  return absl::FailedPreconditionError(msg);
}

}  // namespace

struct Registry::Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lowercased names, last response
  absl::Status sink_error;
};

namespace {

struct Transfer {
  Registry::Response* resp;
  BlobWriter* sink;
  size_t max_body;
  CURL* curl;
  PullProgress* progress;
  curl_off_t received = 0;
};

// libcurl's progress callback: a non-zero return stops the transfer.
int OnProgress(void* arg, curl_off_t, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(arg);
  if (now > t->received) {
    t->received = now;
    t->progress->Progressed();
  }
  absl::Status st = t->progress->Abandoned();
  if (st.ok()) st = t->progress->Stalled();
  if (st.ok()) return 0;
  t->resp->sink_error = std::move(st);
  return 1;
}

size_t OnHeader(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->resp->headers.clear();  // a new response (after a redirect or 100)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    t->resp->headers[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  size_t bytes = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300 && t->sink != nullptr) {
    t->resp->sink_error = t->sink->Write(absl::string_view(data, bytes));
    return t->resp->sink_error.ok() ? bytes : 0;
  }
  size_t cap = (status >= 200 && status < 300) ? t->max_body : kMaxErrorBody;
  if (t->resp->body.size() + bytes > cap) {
    if (status >= 200 && status < 300) {
      t->resp->sink_error = absl::ResourceExhaustedError(
          absl::StrCat("response is larger than ", cap, " bytes"));
      return 0;
    }
    return bytes;  // error bodies are only kept in part
  }
  t->resp->body.append(data, bytes);
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Registry>> Registry::Create(RegistryOptions options) {
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global != CURLE_OK) return absl::InternalError("curl_global_init failed");
  std::unique_ptr<Registry> r(new Registry(std::move(options)));
  std::vector<std::string> files = {kSystemCaBundle};
  files.insert(files.end(), r->options_.ca_files.begin(), r->options_.ca_files.end());
  for (size_t i = 0; i < files.size(); ++i) {
    absl::StatusOr<std::string> pem = ReadFile(files[i], absl::StrCat("read CA file ", files[i]));
    if (!pem.ok()) {
      if (i == 0) continue;  // a node without a system bundle trusts only the configured CAs
      return pem.status();
    }
    if (i > 0 && !absl::StrContains(*pem, "-----BEGIN CERTIFICATE-----")) {
      return absl::InvalidArgumentError(absl::StrCat("CA file ", files[i], " holds no PEM certificate"));
    }
    absl::StrAppend(&r->ca_blob_, *pem, "\n");
  }
  return r;
}

Registry::~Registry() = default;

std::vector<Endpoint> Registry::EndpointsFor(const Reference& ref) const {
  std::vector<Endpoint> out;
  if (auto it = options_.mirrors.find(ref.domain); it != options_.mirrors.end()) {
    for (std::string base : it->second) {
      while (absl::EndsWith(base, "/")) base.pop_back();
      if (!absl::StrContains(base, "://")) base = absl::StrCat("https://", base);
      out.push_back({base, ref.path});
    }
  }
  std::string host = ref.domain == kDockerHub ? "registry-1.docker.io" : ref.domain;
  bool insecure = std::find(options_.insecure_hosts.begin(), options_.insecure_hosts.end(),
                            ref.domain) != options_.insecure_hosts.end();
  out.push_back({absl::StrCat(insecure ? "http://" : "https://", host), ref.path});
  return out;
}

absl::StatusOr<Registry::Response> Registry::Perform(const std::string& url,
                                                     const std::vector<std::string>& headers,
                                                     BlobWriter* sink, size_t max_body,
                                                     const std::string& userpwd,
                                                     const std::string& post_fields,
                                                     PullProgress* progress) {
  if (progress != nullptr) {
    CRIUS_RETURN_IF_ERROR(progress->Abandoned());
    progress->Progressed();  // a transfer begins
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  Response resp;
  Transfer t{&resp, sink, max_body, curl.get(), progress};
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> owned(list, curl_slist_free_all);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  if (progress != nullptr) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  // No CURLOPT_ACCEPT_ENCODING: a body is taken as the bytes sent, never
  // inflated, so a compressed response cannot pass the size limits.
  curl_easy_setopt(c, CURLOPT_USERAGENT, "crius");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_blob_.empty()) {
    struct curl_blob blob = {ca_blob_.data(), ca_blob_.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!userpwd.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERPWD, userpwd.c_str());
  }
  if (!post_fields.empty()) curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, post_fields.c_str());
  CURLcode rc = curl_easy_perform(c);
  if (!resp.sink_error.ok()) return resp.sink_error;
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

absl::StatusOr<std::string> Registry::FetchToken(const std::string& challenge, const Endpoint& ep,
                                                 const Credentials& creds, PullProgress* progress) {
  std::map<std::string, std::string> p = ChallengeParams(challenge);
  if (p["realm"].empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(ep.base, " asks for a bearer token without naming a realm"));
  }
  std::string scope = p.count("scope") ? p["scope"] : absl::StrCat("repository:", ep.repository, ":pull");
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> esc(curl_easy_init(), curl_easy_cleanup);
  std::string query = absl::StrCat("service=", Escape(esc.get(), p["service"]), "&scope=",
                                   Escape(esc.get(), scope));
  absl::StatusOr<Response> resp;
  if (!creds.identity_token.empty()) {
    resp = Perform(p["realm"], {}, nullptr, kMaxTokenBytes, "",
                   absl::StrCat(query, "&grant_type=refresh_token&client_id=crius&refresh_token=",
                                Escape(esc.get(), creds.identity_token)),
                   progress);
  } else {
    std::string userpwd = creds.username.empty() ? "" : absl::StrCat(creds.username, ":", creds.password);
    std::string sep = absl::StrContains(p["realm"], '?') ? "&" : "?";
    resp = Perform(absl::StrCat(p["realm"], sep, query), {}, nullptr, kMaxTokenBytes, userpwd, "",
                   progress);
  }
  if (!resp.ok()) return Annotate(resp.status(), "fetch registry token");
  if (resp->status != 200) {
    return HttpError(resp->status, absl::StrCat("token service ", p["realm"], " refused the request"),
                     resp->body);
  }
  auto j = nlohmann::json::parse(resp->body, nullptr, false);
  for (const char* key : {"token", "access_token"}) {
    if (j.is_object() && j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
      return j[key].get<std::string>();
    }
  }
  return absl::PermissionDeniedError(
      absl::StrCat("token service ", p["realm"], " answered without a token"));
}

absl::StatusOr<Registry::Response> Registry::Get(const Endpoint& ep, const std::string& path,
                                                 const std::vector<std::string>& headers,
                                                 const Credentials& creds, BlobWriter* sink,
                                                 size_t max_body, PullProgress* progress) {
  std::string url = absl::StrCat(ep.base, "/v2/", ep.repository, path);
  std::string key = absl::StrCat(ep.base, "/", ep.repository);
  std::string auth;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = tokens_.find(key); it != tokens_.end()) auth = it->second;
  }
  if (auth.empty() && !creds.registry_token.empty()) auth = absl::StrCat("Bearer ", creds.registry_token);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<std::string> h = headers;
    if (!auth.empty()) h.push_back(absl::StrCat("Authorization: ", auth));
    CRIUS_ASSIGN_OR_RETURN(Response resp, Perform(url, h, sink, max_body, "", "", progress));
    if (resp.status != 401 || attempt == 1) {
      if (resp.status == 401) {
        return absl::PermissionDeniedError(absl::StrCat(
            "GET ", url, ": the registry refused ",
            creds.username.empty() && creds.registry_token.empty() ? "anonymous access"
                                                                   : "the credentials"));
      }
      return resp;
    }
    std::string challenge = resp.headers["www-authenticate"];
    if (absl::StartsWithIgnoreCase(challenge, "bearer")) {
      CRIUS_ASSIGN_OR_RETURN(std::string token, FetchToken(challenge, ep, creds, progress));
      auth = absl::StrCat("Bearer ", token);
    } else if (absl::StartsWithIgnoreCase(challenge, "basic") && !creds.username.empty()) {
      auth = absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(creds.username, ":", creds.password)));
    } else {
      return absl::PermissionDeniedError(absl::StrCat(
          "GET ", url, ": the registry requires authentication and no credentials were given"));
    }
    std::lock_guard<std::mutex> lock(mu_);
    tokens_[key] = auth;
  }
  return absl::InternalError("unreachable");
}

absl::StatusOr<FetchedManifest> Registry::GetManifest(const Endpoint& ep, const std::string& reference,
                                                      const Credentials& creds, PullProgress* progress) {
  std::string what = absl::StrCat("manifest ", ep.repository, ":", reference, " at ", ep.base);
  absl::StatusOr<Response> got = Get(ep, absl::StrCat("/manifests/", reference),
                                     {absl::StrCat("Accept: ", kManifestAccept)}, creds, nullptr,
                                     kMaxManifestBytes, progress);
  if (absl::IsResourceExhausted(got.status())) return TooLarge(what, kMaxManifestBytes, "a manifest");
  CRIUS_ASSIGN_OR_RETURN(Response resp, std::move(got));
  if (resp.status != 200) return HttpError(resp.status, absl::StrCat("GET ", what), resp.body);
  FetchedManifest m;
  m.digest = Sha256Digest(resp.body);
  if (IsDigest(reference) && m.digest != reference) {
    return absl::DataLossError(absl::StrCat(what, ": digest mismatch, the content has ", m.digest));
  }
  m.media_type = ManifestMediaType(resp.body, resp.headers["content-type"]);
  m.body = std::move(resp.body);
  return m;
}

absl::Status Registry::GetBlob(const Endpoint& ep, const Descriptor& d, BlobWriter& writer,
                               const Credentials& creds, PullProgress* progress) {
  std::string what = absl::StrCat("blob ", d.digest, " of ", ep.repository, " at ", ep.base);
  CRIUS_ASSIGN_OR_RETURN(Response resp, Get(ep, absl::StrCat("/blobs/", d.digest), {}, creds,
                                            &writer, 0, progress));
  if (resp.status != 200) return HttpError(resp.status, absl::StrCat("GET ", what), resp.body);
  return Annotate(writer.Commit(), what);
}

absl::StatusOr<std::string> Registry::GetSmallBlob(const Endpoint& ep, const Descriptor& d,
                                                   const Credentials& creds, PullProgress* progress) {
  std::string what = absl::StrCat("blob ", d.digest, " of ", ep.repository, " at ", ep.base);
  if (d.size > static_cast<int64_t>(kMaxConfigBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", d.size, " bytes by its descriptor, more than the ",
                     kMaxConfigBytes >> 20, " MiB an image config may have"));
  }
  absl::StatusOr<Response> answer = Get(ep, absl::StrCat("/blobs/", d.digest), {}, creds, nullptr,
                                        kMaxConfigBytes, progress);
  if (absl::IsResourceExhausted(answer.status())) return TooLarge(what, kMaxConfigBytes, "an image config");
  CRIUS_ASSIGN_OR_RETURN(Response resp, std::move(answer));
  if (resp.status != 200) return HttpError(resp.status, absl::StrCat("GET ", what), resp.body);
  std::string got = Sha256Digest(resp.body);
  if (got != d.digest) {
    return absl::DataLossError(absl::StrCat(what, ": digest mismatch, the content has ", got));
  }
  return std::move(resp.body);
}

}  // namespace crius::image
