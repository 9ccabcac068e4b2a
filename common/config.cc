#include "common/config.h"

#include <functional>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"

namespace crius {
namespace {

// One configuration key: where it lives, what it means, how to read and
// print it. The table below is the single source of the file format.
struct Key {
  std::string path;  // dotted: "network.cni_conf_dir"
  std::string help;
  std::function<absl::Status(Config&, const toml::node&)> set;
  std::function<void(const Config&, toml::table&)> put;  // into a table at `path`
};

using StringField = std::string& (*)(Config&);
using StringListField = std::vector<std::string>& (*)(Config&);
using IntField = int64_t& (*)(Config&);
using StringListMapField = std::map<std::string, std::vector<std::string>>& (*)(Config&);

const char* TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

absl::Status WrongType(const char* expected, const toml::node& node) {
  return absl::InvalidArgumentError(absl::StrCat("expected ", expected, ", got ", TypeName(node)));
}

// Puts `value` at the dotted `path` of `root`, creating the tables on the way.
template <typename V>
void PutAt(toml::table& root, const std::string& path, V&& value) {
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto [it, inserted] = t->insert(parts[i], toml::table{});
    t = it->second.as_table();
  }
  t->insert_or_assign(parts.back(), std::forward<V>(value));
}

Key StringKey(std::string path, std::string help, StringField field,
              std::vector<std::string> choices = {}) {
  Key k{path, help, nullptr, nullptr};
  k.set = [field, choices](Config& c, const toml::node& n) -> absl::Status {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v) return WrongType("a string", n);
    if (!choices.empty() &&
        std::find(choices.begin(), choices.end(), *v) == choices.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", *v, "\" is not one of ", absl::StrJoin(choices, ", ")));
    }
    field(c) = *v;
    return absl::OkStatus();
  };
  k.put = [field, path](const Config& c, toml::table& t) {
    PutAt(t, path, field(const_cast<Config&>(c)));
  };
  return k;
}

Key IntKey(std::string path, std::string help, IntField field, int64_t min, int64_t max) {
  Key k{path, help, nullptr, nullptr};
  k.set = [field, min, max](Config& c, const toml::node& n) -> absl::Status {
    // Only an integer node: value<int64_t>() would convert a float, and one
    // out of int64's range is undefined behaviour.
    const toml::value<int64_t>* v = n.as_integer();
    if (v == nullptr) return WrongType("an integer", n);
    if (**v < min || **v > max) {
      return absl::InvalidArgumentError(absl::StrCat(**v, " is not between ", min, " and ", max));
    }
    field(c) = **v;
    return absl::OkStatus();
  };
  k.put = [field, path](const Config& c, toml::table& t) {
    PutAt(t, path, field(const_cast<Config&>(c)));
  };
  return k;
}

Key StringListKey(std::string path, std::string help, StringListField field) {
  Key k{path, help, nullptr, nullptr};
  k.set = [field](Config& c, const toml::node& n) -> absl::Status {
    const toml::array* arr = n.as_array();
    if (arr == nullptr) return WrongType("an array of strings", n);
    std::vector<std::string> out;
    for (const toml::node& item : *arr) {
      auto v = item.value<std::string>();
      if (!item.is_string() || !v) return WrongType("an array of strings", item);
      out.push_back(*v);
    }
    field(c) = std::move(out);
    return absl::OkStatus();
  };
  k.put = [field, path](const Config& c, toml::table& t) {
    toml::array arr;
    for (const auto& s : field(const_cast<Config&>(c))) arr.push_back(s);
    PutAt(t, path, std::move(arr));
  };
  return k;
}

// A table whose keys are free names (registry hosts), each an array of strings.
Key StringListMapKey(std::string path, std::string help, StringListMapField field) {
  Key k{path, help, nullptr, nullptr};
  k.set = [field](Config& c, const toml::node& n) -> absl::Status {
    const toml::table* t = n.as_table();
    if (t == nullptr) return WrongType("a table of string arrays", n);
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [name, value] : *t) {
      const toml::array* arr = value.as_array();
      if (arr == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("[\"", std::string(name.str()),
                                                       "\"]: expected an array of strings, got ",
                                                       TypeName(value)));
      }
      std::vector<std::string>& list = out[std::string(name.str())];
      for (const toml::node& item : *arr) {
        auto v = item.value<std::string>();
        if (!item.is_string() || !v) {
          return absl::InvalidArgumentError(absl::StrCat(
              "[\"", std::string(name.str()), "\"]: expected an array of strings"));
        }
        list.push_back(*v);
      }
    }
    field(c) = std::move(out);
    return absl::OkStatus();
  };
  k.put = [field, path](const Config& c, toml::table& t) {
    toml::table map;
    for (const auto& [name, list] : field(const_cast<Config&>(c))) {
      toml::array arr;
      for (const auto& s : list) arr.push_back(s);
      map.insert(name, std::move(arr));
    }
    map.is_inline(true);  // "mirrors = { ... }" stays under its [section]
    PutAt(t, path, std::move(map));
  };
  return k;
}

const std::vector<Key>& Keys() {
  static const std::vector<Key> keys = {
      StringKey("root",
                "Persistent state: the SQLite database (state.db), image content and layers,\n"
                "and containers' writable layers unless containers_dir puts them elsewhere.",
                [](Config& c) -> std::string& { return c.root; }),
      StringKey("containers_dir",
                "Where containers' writable layers are kept. Empty: <root>/containers. On a\n"
                "filesystem of its own, containers' writes cannot fill the one of the image\n"
                "layers (and the reverse), and ImageFsInfo reports the two apart, as kubelet's\n"
                "split image filesystem (KEP-4191) expects. A container keeps the directory it\n"
                "was made in when this changes.",
                [](Config& c) -> std::string& { return c.containers_dir; }),
      StringKey("state", "Run-time state: pod directories, monitor sockets, pinned namespaces.",
                [](Config& c) -> std::string& { return c.state; }),
      StringKey("listen", "The CRI gRPC endpoint (unix sockets only), created 0660 and owned by root.",
                [](Config& c) -> std::string& { return c.listen; }),
      StringKey("log_level", "Least severe level written to stderr: debug, info, warn or error.",
                [](Config& c) -> std::string& { return c.log_level; },
                {"debug", "info", "warn", "error"}),
      StringKey("cgroup_driver",
                "How pod and container cgroups are managed; kubelet's cgroupDriver must match.\n"
                "Only \"cgroupfs\" is supported by this build.",
                [](Config& c) -> std::string& { return c.cgroup_driver; }, {"cgroupfs"}),
      StringKey("monitor_path",
                "The crius-monitor binary started for each pod. Empty: the one installed\n"
                "beside criusd.",
                [](Config& c) -> std::string& { return c.monitor_path; }),
      StringKey("state_db.synchronous",
                "SQLite synchronous level of state.db (WAL journal). \"full\" fsyncs every\n"
                "commit, so a state change that an RPC reported survives power loss as well as\n"
                "a crash of criusd; \"normal\" survives a crash of criusd but may lose the last\n"
                "commits on power loss, for fewer fsyncs.",
                [](Config& c) -> std::string& { return c.state_db.synchronous; },
                {"full", "normal"}),
      StringKey("network.cni_conf_dir",
                "Directory of CNI network configurations (.conflist, .conf, .json).",
                [](Config& c) -> std::string& { return c.network.cni_conf_dir; }),
      StringListKey("network.cni_bin_dirs", "Directories searched for CNI plugin binaries, in order.",
                    [](Config& c) -> std::vector<std::string>& { return c.network.cni_bin_dirs; }),
      StringKey("runtime_handlers.spt",
                "RuntimeClass handler that runs a pod's containers as unikernels under crius-spt.",
                [](Config& c) -> std::string& { return c.runtime_handlers.spt; }),
      StringKey("runtime_handlers.hvt",
                "RuntimeClass handler that runs a pod's containers as unikernels under crius-hvt\n"
                "(a KVM virtual machine per container).",
                [](Config& c) -> std::string& { return c.runtime_handlers.hvt; }),
      StringKey("unikernel.spt_path",
                "The crius-spt tender binary. Empty: the one installed beside criusd.",
                [](Config& c) -> std::string& { return c.unikernel.spt_path; }),
      StringKey("unikernel.hvt_path",
                "The crius-hvt tender binary. Empty: the one installed beside criusd.",
                [](Config& c) -> std::string& { return c.unikernel.hvt_path; }),
      IntKey("unikernel.tender_reserve_mib",
             "MiB of a unikernel container's memory limit kept for its tender (its own pages\n"
             "and, for hvt, the kernel's VM state); the guest gets the rest less 1/256 of it for\n"
             "the page tables that map it, so a guest that touches all its memory is not\n"
             "OOM-killed with its tender. deploy/runtimeclass.yaml's overhead matches it.",
             [](Config& c) -> int64_t& { return c.unikernel.tender_reserve_mib; }, 0, 4096),
      IntKey("unikernel.default_memory_mib",
             "Guest memory in MiB of a unikernel container without a memory limit.",
             [](Config& c) -> int64_t& { return c.unikernel.default_memory_mib; }, 2, 4096),
      StringListKey("registry.insecure",
                    "Registry hosts (host or host:port) reached over plain http instead of https.",
                    [](Config& c) -> std::vector<std::string>& { return c.registry.insecure; }),
      StringListKey("registry.ca_files",
                    "PEM files of certificate authorities trusted for https registries, besides\n"
                    "the system bundle (/etc/ssl/certs/ca-certificates.crt).",
                    [](Config& c) -> std::vector<std::string>& { return c.registry.ca_files; }),
      StringListMapKey(
          "registry.mirrors",
          "Mirrors per registry host, tried in order before the host itself; an endpoint\n"
          "without a scheme is https. Example: \"gcr.io\" = [\"http://127.0.0.1:5000\"]",
          [](Config& c) -> std::map<std::string, std::vector<std::string>>& {
            return c.registry.mirrors;
          }),
      StringKey("registry.pull_progress_timeout",
                "A pull that receives no bytes from the registry for this long is cancelled,\n"
                "as a Go duration (\"5m\", as containerd's image_pull_progress_timeout); \"0\"\n"
                "never cancels one. A PullImage also ends at its own gRPC deadline.",
                [](Config& c) -> std::string& { return c.registry.pull_progress_timeout; }),
      IntKey("registry.max_unpacked_layer_mib",
             "A layer whose uncompressed tar passes this many MiB fails its pull (a\n"
             "decompression bomb: a few MiB of zeros inflate to many GiB); nothing of it is kept.",
             [](Config& c) -> int64_t& { return c.registry.max_unpacked_layer_mib; }, 1, int64_t{1} << 30),
      IntKey("events.max_queued",
             "How many events a GetContainerEvents stream may fall behind (its client not\n"
             "reading) before criusd ends it with ResourceExhausted and frees what it held;\n"
             "kubelet then relists and subscribes again. The other streams never wait for it.",
             [](Config& c) -> int64_t& { return c.events.max_queued; }, 1, 1000000),
      // 9654: in Prometheus' exporter range and clear of what usually runs
      // beside a runtime on a node (Prometheus and CRI-O's metrics 9090,
      // node_exporter 9100, containerd's customary 1338, kubelet 10250).
      StringKey("metrics.address",
                "Where Prometheus metrics are served over HTTP at /metrics, as IPv4:port.\n"
                "Empty disables the endpoint. The default stays on loopback: anyone who can\n"
                "reach the address can read the metrics.",
                [](Config& c) -> std::string& { return c.metrics.address; }),
      StringKey("streaming.address",
                "Where the streaming server of Exec, Attach and PortForward listens, as\n"
                "IPv4:port or [IPv6]:port; port 0 picks a free one. kubelet connects to it\n"
                "(the API server's streams go through kubelet), so loopback suffices; anyone\n"
                "who can reach it and learn a URL's token can use that URL, once, within a minute.",
                [](Config& c) -> std::string& { return c.streaming.address; }),
      StringKey("streaming.idle_timeout",
                "A streaming connection with no traffic either way for this long is closed\n"
                "(and an exec's process ended), as a Go duration: \"4h\", \"30m\".",
                [](Config& c) -> std::string& { return c.streaming.idle_timeout; }),
      StringKey("streaming.token_ttl",
                "How long the URL an Exec, Attach or PortForward answers with stays good (it is\n"
                "good for one connection), as a Go duration. kubelet connects at once.",
                [](Config& c) -> std::string& { return c.streaming.token_ttl; }),
  };
  return keys;
}

const Key* FindKey(const std::string& path) {
  for (const Key& k : Keys()) {
    if (k.path == path) return &k;
  }
  return nullptr;
}

bool IsTablePrefix(const std::string& path) {
  for (const Key& k : Keys()) {
    if (absl::StartsWith(k.path, absl::StrCat(path, "."))) return true;
  }
  return false;
}

absl::Status Apply(Config& config, const toml::table& table, const std::string& prefix) {
  for (const auto& [name, node] : table) {
    std::string leaf(name.str());
    std::string path = prefix.empty() ? leaf : absl::StrCat(prefix, ".", leaf);
    if (const Key* key = FindKey(path)) {
      if (absl::Status st = key->set(config, node); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("key \"", path, "\": ", st.message()));
      }
    } else if (IsTablePrefix(path)) {
      const toml::table* sub = node.as_table();
      if (sub == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("key \"", path, "\": expected a table, got ", TypeName(node)));
      }
      CRIUS_RETURN_IF_ERROR(Apply(config, *sub, path));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown key \"", path, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAbsolute(absl::string_view key, absl::string_view path) {
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("key \"", key, "\": \"", path, "\" is not an absolute path"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(absl::string_view text, absl::string_view source) {
  Config config;
  toml::table table;
  try {
    table = toml::parse(std::string_view(text.data(), text.size()), std::string(source));
  } catch (const toml::parse_error& err) {
    const auto& where = err.source().begin;
    return absl::InvalidArgumentError(absl::StrCat("config ", source, ": line ", where.line,
                                                   ", column ", where.column, ": ",
                                                   std::string(err.description())));
  }
  if (absl::Status st = Apply(config, table, ""); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", source, ": ", st.message()));
  }
  return config;
}

absl::StatusOr<Config> LoadConfig(const std::string& path, bool must_exist) {
  absl::StatusOr<std::string> text = ReadFile(path, absl::StrCat("read config ", path));
  if (!text.ok()) {
    if (ErrnoOf(text.status()) == ENOENT && !must_exist) return Config{};
    return text.status();
  }
  return ParseConfig(*text, path);
}

absl::Status ValidateConfig(const Config& c) {
  CRIUS_RETURN_IF_ERROR(CheckAbsolute("root", c.root));
  CRIUS_RETURN_IF_ERROR(CheckAbsolute("state", c.state));
  if (!c.containers_dir.empty()) CRIUS_RETURN_IF_ERROR(CheckAbsolute("containers_dir", c.containers_dir));
  if (!c.monitor_path.empty()) CRIUS_RETURN_IF_ERROR(CheckAbsolute("monitor_path", c.monitor_path));
  CRIUS_RETURN_IF_ERROR(CheckAbsolute("network.cni_conf_dir", c.network.cni_conf_dir));
  for (const auto& dir : c.network.cni_bin_dirs) {
    CRIUS_RETURN_IF_ERROR(CheckAbsolute("network.cni_bin_dirs", dir));
  }
  if (absl::StatusOr<std::string> sock = UnixSocketPath(c.listen); !sock.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("key \"listen\": ", sock.status().message()));
  }
  {
    struct DurationKey {
      const char* key;
      const std::string& text;
      bool zero_ok;
    };
    for (const DurationKey& k : {DurationKey{"streaming.idle_timeout", c.streaming.idle_timeout, false},
                                 DurationKey{"streaming.token_ttl", c.streaming.token_ttl, false},
                                 DurationKey{"registry.pull_progress_timeout",
                                             c.registry.pull_progress_timeout, true}}) {
      absl::Duration d;
      if (!absl::ParseDuration(k.text, &d) || d < absl::ZeroDuration() || (d == absl::ZeroDuration() && !k.zero_ok)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "key \"", k.key, "\": \"", k.text, "\" is not ",
            k.zero_ok ? "a duration of zero or more" : "a positive duration"));
      }
    }
    size_t colon = c.streaming.address.rfind(':');
    int port = -1;
    if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(c.streaming.address.substr(colon + 1), &port) ||
        port < 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("key \"streaming.address\": \"", c.streaming.address, "\" is not host:port"));
    }
  }
  for (const auto& [key, path] : {std::pair{"unikernel.spt_path", c.unikernel.spt_path},
                                  std::pair{"unikernel.hvt_path", c.unikernel.hvt_path}}) {
    if (!path.empty()) CRIUS_RETURN_IF_ERROR(CheckAbsolute(key, path));
  }
  const auto& h = c.runtime_handlers;
  if (h.spt.empty() || h.hvt.empty()) {
    return absl::InvalidArgumentError("key \"runtime_handlers\": handler names must not be empty");
  }
  if (h.spt == h.hvt) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key \"runtime_handlers\": spt and hvt share the name \"", h.spt, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> UnixSocketPath(absl::string_view listen) {
  constexpr absl::string_view kScheme = "unix://";
  if (!absl::StartsWith(listen, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", listen, "\" is not a unix:// endpoint (only unix sockets are served)"));
  }
  absl::string_view path = listen.substr(kScheme.size());
  if (!absl::StartsWith(path, "/") || path.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", listen, "\" does not name an absolute socket path"));
  }
  if (path.size() >= 108) {  // sizeof(sockaddr_un::sun_path)
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path, "\" is too long"));
  }
  return std::string(path);
}

std::string RenderConfigToml(const Config& config) {
  std::string out =
      "# crius configuration (/etc/crius/crius.toml). Every key is optional; the values\n"
      "# below are the defaults compiled into criusd (criusd --print-config).\n";
  std::string section;
  for (const Key& k : Keys()) {
    const std::string& path = k.path;
    std::string table_name;
    std::string leaf = path;
    if (size_t dot = path.rfind('.'); dot != std::string::npos) {
      table_name = path.substr(0, dot);
      leaf = path.substr(dot + 1);
    }
    if (table_name != section) {
      absl::StrAppend(&out, "\n[", table_name, "]\n");
      section = table_name;
    }
    out += "\n";
    for (absl::string_view line : absl::StrSplit(k.help, '\n')) absl::StrAppend(&out, "# ", line, "\n");
    // Let toml++ print "leaf = value" from a one-key table.
    toml::table nested;
    k.put(config, nested);
    toml::table flat;
    nested.at_path(path).node()->visit([&](const auto& v) { flat.insert(leaf, v); });
    std::ostringstream line;
    line << toml::toml_formatter{flat};
    absl::StrAppend(&out, line.str(), "\n");
  }
  return out;
}

std::string RenderConfigJson(const Config& config) {
  toml::table all;
  for (const Key& k : Keys()) k.put(config, all);
  std::ostringstream out;
  out << toml::json_formatter{all};
  return out.str();
}

}  // namespace crius
