// A stack of undo steps for multi-step operations: each step that succeeds
// pushes its undo; on failure the undos run in reverse order. Commit() keeps
// everything done.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace crius {

class UndoStack {
 public:
  UndoStack() = default;
  UndoStack(const UndoStack&) = delete;
  UndoStack& operator=(const UndoStack&) = delete;
  ~UndoStack() { Rollback(); }

  void Push(std::string what, std::function<void()> undo) {
    steps_.emplace_back(std::move(what), std::move(undo));
  }

  // Keeps every step: nothing is undone.
  void Commit() { steps_.clear(); }

  // Runs every pushed undo, newest first.
  void Rollback() {
    while (!steps_.empty()) {
      auto step = std::move(steps_.back());
      steps_.pop_back();
      step.second();
    }
  }

  size_t size() const { return steps_.size(); }

 private:
  std::vector<std::pair<std::string, std::function<void()>>> steps_;
};

}  // namespace crius
