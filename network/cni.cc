#include "network/cni.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius::network {
namespace {

using json = nlohmann::json;

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

double SecondsSince(const struct timespec& start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return double(now.tv_sec - start.tv_sec) + double(now.tv_nsec - start.tv_nsec) / 1e9;
}

// What a failed plugin said: its CNI error object when it printed one.
std::string DescribeFailure(const std::string& out, const std::string& err) {
  json j = json::parse(out, nullptr, false);
  if (j.is_object() && j.contains("msg")) {
    std::string text = j["msg"].is_string() ? j["msg"].get<std::string>() : j["msg"].dump();
    if (j.contains("code")) absl::StrAppend(&text, " (CNI error code ", j["code"].dump(), ")");
    if (j.contains("details") && j["details"].is_string() && !j["details"].get<std::string>().empty()) {
      absl::StrAppend(&text, ": ", j["details"].get<std::string>());
    }
    return text;
  }
  std::string text(absl::StripAsciiWhitespace(err.empty() ? out : err));
  if (text.size() > 4096) text.resize(4096);
  return text.empty() ? "no output" : text;
}

}  // namespace

absl::StatusOr<std::string> ExecPlugin(const std::string& path, const std::vector<std::string>& env,
                                       const std::string& input, int timeout_ms) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  pid_t pid;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(rc, absl::StrCat("execute ", path));
  in_r.reset();
  out_w.reset();
  err_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  std::string stdout_text, stderr_text;
  size_t written = 0;
  if (input.empty()) in_w.reset();
  int64_t deadline = NowMs() + timeout_ms;
  bool timed_out = false;
  while (out_r || err_r) {
    struct pollfd p[3];
    int n = 0;
    if (in_w) p[n++] = {in_w.get(), POLLOUT, 0};
    if (out_r) p[n++] = {out_r.get(), POLLIN, 0};
    if (err_r) p[n++] = {err_r.get(), POLLIN, 0};
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(p, n, static_cast<int>(left)) < 0 && errno != EINTR) {
      timed_out = true;  // cannot watch it any more: end it as if it ran out of time
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (p[i].revents == 0) continue;
      if (in_w && p[i].fd == in_w.get()) {
        ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        // A plugin that exits without reading its stdin is not an error here.
        if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in_w.reset();
        continue;
      }
      UniqueFd& fd = (out_r && p[i].fd == out_r.get()) ? out_r : err_r;
      std::string& sink = &fd == &out_r ? stdout_text : stderr_text;
      char buf[16384];
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) {
        if (sink.size() < (64u << 20)) sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd.reset();
      }
    }
  }
  in_w.reset();
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(path, " did not finish within ", timeout_ms / 1000, " s: killed"));
  }
  if (WIFSIGNALED(status)) {
    return absl::InternalError(absl::StrCat(path, " was killed by signal ", WTERMSIG(status), ": ",
                                            DescribeFailure(stdout_text, stderr_text)));
  }
  if (WEXITSTATUS(status) != 0) {
    return absl::InternalError(DescribeFailure(stdout_text, stderr_text));
  }
  return stdout_text;
}

bool CniVersionAtLeast(const std::string& version, int major, int minor) {
  std::vector<absl::string_view> parts = absl::StrSplit(version, '.');
  int ma = 0, mi = 0;
  if (parts.empty() || !absl::SimpleAtoi(parts[0], &ma)) return false;
  if (parts.size() > 1 && !absl::SimpleAtoi(parts[1], &mi)) return false;
  return ma > major || (ma == major && mi >= minor);
}

json PluginConfig(const CniNetwork& net, size_t index, const json& capability_args,
                  const json& prev_result) {
  json conf = net.plugins[index];
  conf["name"] = net.name;
  conf["cniVersion"] = net.cni_version;
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  auto caps = conf.find("capabilities");
  if (caps != conf.end() && caps->is_object()) {
    json rc = json::object();
    for (auto& [cap, wanted] : caps->items()) {
      if (wanted.is_boolean() && wanted.get<bool>() && capability_args.contains(cap)) {
        rc[cap] = capability_args[cap];
      }
    }
    if (!rc.empty()) conf["runtimeConfig"] = rc;
  }
  return conf;
}

absl::StatusOr<json> Cni::Invoke(const char* op, const CniNetwork& net, size_t index,
                                 const Attachment& a, const json& prev) const {
  const std::string type = net.plugins[index]["type"].get<std::string>();
  std::string what = absl::StrCat("CNI ", op, " of network \"", net.name, "\", plugin ", type);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  auto finish = [&](bool ok) {
    if (observer_) observer_(op, type, SecondsSince(start), ok);
  };
  absl::StatusOr<std::string> exe = FindPlugin(bin_dirs_, type);
  if (!exe.ok()) {
    finish(false);
    return Annotate(exe.status(), what);
  }
  std::vector<std::string> env = {
      absl::StrCat("CNI_COMMAND=", op),
      absl::StrCat("CNI_CONTAINERID=", a.container_id),
      absl::StrCat("CNI_NETNS=", a.netns),
      absl::StrCat("CNI_IFNAME=", a.ifname),
      absl::StrCat("CNI_PATH=", absl::StrJoin(bin_dirs_, ":")),
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  };
  std::string args = "IgnoreUnknown=1";
  for (const auto& [k, v] : a.args) absl::StrAppend(&args, ";", k, "=", v);
  env.push_back(absl::StrCat("CNI_ARGS=", args));
  std::string input = PluginConfig(net, index, a.capability_args, prev).dump();
  absl::StatusOr<std::string> out = ExecPlugin(*exe, env, input, timeout_ms_);
  finish(out.ok());
  if (!out.ok()) return Annotate(out.status(), what);
  if (std::string_view(op) != "ADD") return json();
  json result = json::parse(*out, nullptr, false);
  if (!result.is_object()) {
    return absl::InternalError(absl::StrCat(what, ": the plugin's result is not a JSON object"));
  }
  return result;
}

absl::StatusOr<json> Cni::Add(const CniNetwork& net, const Attachment& a) const {
  json prev;
  for (size_t i = 0; i < net.plugins.size(); ++i) {
    CRIUS_ASSIGN_OR_RETURN(prev, Invoke("ADD", net, i, a, prev));
  }
  return prev;
}

absl::Status Cni::Check(const CniNetwork& net, const Attachment& a, const json& prev_result) const {
  if (net.disable_check || !CniVersionAtLeast(net.cni_version, 0, 4)) return absl::OkStatus();
  for (size_t i = 0; i < net.plugins.size(); ++i) {
    CRIUS_RETURN_IF_ERROR(Invoke("CHECK", net, i, a, prev_result).status());
  }
  return absl::OkStatus();
}

absl::Status Cni::Del(const CniNetwork& net, const Attachment& a, const json& prev_result) const {
  // prevResult on DEL came with CNI 0.4.0; older plugins are not given one.
  const json prev = CniVersionAtLeast(net.cni_version, 0, 4) ? prev_result : json();
  absl::Status first;
  for (size_t i = net.plugins.size(); i-- > 0;) {
    absl::Status st = Invoke("DEL", net, i, a, prev).status();
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

std::vector<SandboxAddress> SandboxAddresses(const json& result, const std::string& ifname) {
  std::vector<SandboxAddress> v4, v6;
  auto add = [&](const std::string& cidr, const std::string& gateway) {
    std::string ip = cidr.substr(0, cidr.find('/'));
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) == 1) v4.push_back({ip, cidr, gateway});
    else if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) v6.push_back({ip, cidr, gateway});
  };
  if (!result.is_object()) return {};
  auto ips = result.find("ips");
  if (ips != result.end() && ips->is_array()) {
    const json* ifaces = result.contains("interfaces") && result["interfaces"].is_array()
                             ? &result["interfaces"] : nullptr;
    for (const json& ip : *ips) {
      if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) continue;
      auto idx = ip.find("interface");
      if (idx != ip.end() && idx->is_number_integer() && ifaces != nullptr) {
        int64_t i = idx->get<int64_t>();
        if (i < 0 || i >= static_cast<int64_t>(ifaces->size())) continue;
        const json& iface = (*ifaces)[static_cast<size_t>(i)];
        auto sandbox = iface.is_object() ? iface.find("sandbox") : iface.end();
        auto name = iface.is_object() ? iface.find("name") : iface.end();
        if (!iface.is_object() || sandbox == iface.end() || !sandbox->is_string() || sandbox->get<std::string>().empty() ||
            name == iface.end() || !name->is_string() || name->get<std::string>() != ifname) {
          continue;
        }
      }
      auto gw = ip.find("gateway");
      add(ip["address"].get<std::string>(), gw != ip.end() && gw->is_string() ? gw->get<std::string>() : "");
    }
  }
  for (const char* legacy : {"ip4", "ip6"}) {  // CNI 0.1.0 / 0.2.0 results
    auto it = result.find(legacy);
    if (it != result.end() && it->is_object() && it->contains("ip") && (*it)["ip"].is_string()) {
      auto gw = it->find("gateway");
      add((*it)["ip"].get<std::string>(), gw != it->end() && gw->is_string() ? gw->get<std::string>() : "");
    }
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

std::vector<std::string> SandboxIps(const json& result, const std::string& ifname) {
  std::vector<std::string> ips;
  for (const SandboxAddress& a : SandboxAddresses(result, ifname)) ips.push_back(a.ip);
  return ips;
}

}  // namespace crius::network
