// Objects with a unique id and a reserved name (pods, containers), kept in
// memory for list and status calls. Lookups by full id, unique id prefix
// (crictl shortens ids) or reserved name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace crius::cri {

// T has `std::string id` and `std::string reserved_name`.
template <typename T>
class NamedTable {
 public:
  std::shared_ptr<T> Get(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
  }

  // By full id, or by an id prefix that names exactly one object.
  std::shared_ptr<T> Find(const std::string& id_or_prefix) const {
    if (id_or_prefix.empty()) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_id_.find(id_or_prefix); it != by_id_.end()) return it->second;
    std::shared_ptr<T> match;
    for (auto it = by_id_.lower_bound(id_or_prefix);
         it != by_id_.end() && absl::StartsWith(it->first, id_or_prefix); ++it) {
      if (match) return nullptr;  // ambiguous
      match = it->second;
    }
    return match;
  }

  std::shared_ptr<T> ByName(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : by_id_.at(it->second);
  }

  std::vector<std::shared_ptr<T>> All() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<T>> out;
    out.reserve(by_id_.size());
    for (const auto& [id, item] : by_id_) out.push_back(item);
    return out;
  }

  // Adds `item` once `persist` has recorded it; AlreadyExists when another
  // object holds its name (`kind` names what it is in the message).
  absl::Status Add(const std::shared_ptr<T>& item, const char* kind,
                   const std::function<absl::Status()>& persist) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_name_.find(item->reserved_name); it != by_name_.end()) {
      return absl::AlreadyExistsError(absl::StrCat(kind, " name ", item->reserved_name,
                                                   " is reserved for ", kind, " ", it->second));
    }
    if (absl::Status st = persist(); !st.ok()) return st;
    by_id_[item->id] = item;
    by_name_[item->reserved_name] = item->id;
    return absl::OkStatus();
  }

  // For loading recorded objects, which hold their names already.
  void Insert(const std::shared_ptr<T>& item) {
    std::lock_guard<std::mutex> lock(mu_);
    by_id_[item->id] = item;
    by_name_[item->reserved_name] = item->id;
  }

  void Remove(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_id_.find(id); it != by_id_.end()) {
      by_name_.erase(it->second->reserved_name);
      by_id_.erase(it);
    }
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<T>> by_id_;
  std::map<std::string, std::string> by_name_;
};

}  // namespace crius::cri
