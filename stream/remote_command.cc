#include "stream/remote_command.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace crius::stream {

namespace asio = boost::asio;
using boost::system::error_code;

std::string OutcomeMessage(RcVersion version, const absl::StatusOr<int>& exit_code) {
  if (version < RcVersion::kV4) {
    if (!exit_code.ok()) return std::string(exit_code.status().message());
    if (*exit_code == 0) return "";
    return absl::StrCat("command terminated with non-zero exit code: exit status ", *exit_code);
  }
  // A Kubernetes Status (metav1.Status), as kubelet's streaming server
  // writes it: clients read the exit code from the ExitCode cause.
  nlohmann::json status = {{"metadata", nlohmann::json::object()}};
  if (exit_code.ok() && *exit_code == 0) {
    status["status"] = "Success";
  } else if (exit_code.ok()) {
    status["status"] = "Failure";
    status["message"] = absl::StrCat("command terminated with non-zero exit code: exit status ", *exit_code);
    status["reason"] = "NonZeroExitCode";
    status["details"] = {{"causes", {{{"reason", "ExitCode"}, {"message", absl::StrCat(*exit_code)}}}}};
  } else {
    std::string why(exit_code.status().message());
    status["status"] = "Failure";
    status["message"] = absl::StrCat("Internal error occurred: ", why);
    status["reason"] = "InternalError";
    status["details"] = {{"causes", {{{"message", why}}}}};
    status["code"] = 500;
  }
  return status.dump();
}

RemoteCommand::RemoteCommand(asio::any_io_executor ex, Backend* backend, Request req, RcVersion version, Out* out)
    : ex_(std::move(ex)), backend_(backend), req_(std::move(req)), version_(version), out_(out) {}

void RemoteCommand::Fail(const absl::Status& st) {
  LOG_INFO("streaming: %s %s: %s", KindPath(req_.kind), req_.container_id, st.message());
  if (out_ == nullptr) return;
  out_->Send(kError, OutcomeMessage(version_, st));
  out_->Fin(kError);
  out_->Close();
  done_ = true;
}

void RemoteCommand::Begin() {
  if (begun_ || out_ == nullptr) return;
  begun_ = true;
  absl::StatusOr<std::unique_ptr<Io>> io =
      req_.kind == Request::Kind::kExec ? backend_->Exec(req_) : backend_->Attach(req_);
  if (!io.ok()) {
    Fail(io.status());
    return;
  }
  io_ = std::move(*io);
  auto add = [&](UniqueFd& fd, int channel) {
    if (!fd) return;
    auto o = std::make_unique<Output>();
    o->fd = std::make_unique<asio::posix::stream_descriptor>(ex_, fd.release());
    o->channel = channel;
    o->buf.resize(channel < 0 ? 65536 + 1 : 32768);
    outputs_.push_back(std::move(o));
  };
  add(io_->stdout_r, kStdout);
  add(io_->stderr_r, kStderr);
  add(io_->tagged_r, -1);
  if (io_->stdin_w) stdin_ = std::make_unique<asio::posix::stream_descriptor>(ex_, io_->stdin_w.release());
  if (io_->exited) {
    exited_ = std::make_unique<asio::posix::stream_descriptor>(ex_, io_->exited.release());
    exited_->async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](error_code ec) {
      if (ec || self->done_) return;
      // Output read before the exit may still wait in the queue: drain
      // after it.
      asio::post(self->ex_, [self] { self->Drain(); });
    });
  }
  for (auto& o : outputs_) ReadOutput(*o);
  for (auto& [channel, data] : early_) Input(channel, std::move(data));
  early_.clear();
  if (stdin_end_) InputEnd(kStdin);
  if (!exited_ && AllOutputsClosed()) Done();
}

bool RemoteCommand::AllOutputsClosed() const {
  for (const auto& o : outputs_) {
    if (o->open) return false;
  }
  return true;
}

void RemoteCommand::Emit(Output& o, const char* data, size_t n) {
  if (out_ == nullptr || n == 0) return;
  int channel = o.channel;
  if (channel < 0) {  // attach: one tag byte, then the bytes
    channel = data[0] == 2 ? kStderr : kStdout;
    ++data;
    --n;
  }
  // A terminal is read even when its output was not asked for (it would
  // block the command otherwise); what nobody asked for is dropped.
  if (n == 0 || (channel == kStdout && !req_.stdout) || (channel == kStderr && !req_.stderr)) return;
  out_->Send(channel, std::string(data, n));
}

void RemoteCommand::ReadOutput(Output& o) {
  o.fd->async_read_some(asio::buffer(o.buf), [self = shared_from_this(), &o](error_code ec, size_t n) {
    if (self->done_ || !o.open) return;
    if (ec) {  // EOF; EIO from a terminal whose other side is all closed
      o.open = false;
      if (o.channel >= 0 && self->out_ != nullptr) self->out_->Fin(o.channel);
      if (!self->exited_ && self->AllOutputsClosed()) self->Done();
      return;
    }
    self->Emit(o, o.buf.data(), n);
    self->ReadOutput(o);
  });
}

void RemoteCommand::Drain() {
  if (done_) return;
  // The process has exited: what it wrote is in the pipes. A process it
  // left behind may keep them open; it is not waited for.
  for (auto& o : outputs_) {
    if (!o->open) continue;
    int fd = o->fd->native_handle();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
      ssize_t n = ::read(fd, o->buf.data(), o->buf.size());
      if (n > 0) {
        Emit(*o, o->buf.data(), static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;
    }
  }
  Done();
}

void RemoteCommand::Done() {
  if (done_) return;
  done_ = true;
  absl::StatusOr<int> outcome = io_ ? io_->Finish() : absl::StatusOr<int>(0);
  if (req_.kind == Request::Kind::kExec) {
    LOG_DEBUG("streaming: exec in %s ended: %s", req_.container_id,
              outcome.ok() ? absl::StrCat("exit code ", *outcome) : std::string(outcome.status().message()));
  }
  for (auto& o : outputs_) o->fd->close();
  if (stdin_) stdin_->close();
  if (exited_) exited_->close();
  if (out_ == nullptr) return;
  std::string message = OutcomeMessage(version_, outcome);
  if (!message.empty()) out_->Send(kError, std::move(message));
  for (int ch : {kStdout, kStderr, kError}) out_->Fin(ch);
  out_->Close();
}

void RemoteCommand::Input(int channel, std::string data) {
  if (done_) return;
  if (!begun_) {
    early_.emplace_back(channel, std::move(data));
    return;
  }
  if (channel == kResize) {
    Resize(data);
    return;
  }
  if (channel != kStdin || !stdin_ || stdin_end_) return;
  stdin_queue_.push_back(std::move(data));
  WriteStdin();
}

void RemoteCommand::WriteStdin() {
  if (stdin_writing_ || !stdin_ || !stdin_->is_open()) return;
  if (stdin_queue_.empty()) {
    if (stdin_end_) {
      stdin_->close();
      if (io_) io_->StdinClosed();
    }
    return;
  }
  stdin_writing_ = true;
  asio::async_write(*stdin_, asio::buffer(stdin_queue_.front()), [self = shared_from_this()](error_code ec, size_t) {
    self->stdin_writing_ = false;
    if (self->done_) return;
    if (ec) {  // the command closed its stdin: the rest is dropped
      self->stdin_queue_.clear();
      self->stdin_->close();
      return;
    }
    self->stdin_queue_.pop_front();
    self->WriteStdin();
  });
}

void RemoteCommand::InputEnd(int channel) {
  if (channel != kStdin || done_) return;
  stdin_end_ = true;
  if (begun_) WriteStdin();
}

void RemoteCommand::Resize(const std::string& data) {
  if (io_ == nullptr || io_->tty_fd < 0) {
    LOG_INFO("streaming: %s %s: resize without a terminal ignored", KindPath(req_.kind), req_.container_id);
    return;
  }
  // Each message is one JSON object; over SPDY they may come split or
  // several at once.
  resize_buf_ += data;
  for (;;) {
    size_t open = resize_buf_.find('{');
    size_t close = resize_buf_.find('}', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || close == std::string::npos) break;
    std::string text = resize_buf_.substr(open, close - open + 1);
    resize_buf_.erase(0, close + 1);
    nlohmann::json size = nlohmann::json::parse(text, nullptr, false);
    if (size.is_discarded() || !size.is_object() || !size.value("Width", nlohmann::json()).is_number_unsigned() ||
        !size.value("Height", nlohmann::json()).is_number_unsigned()) {
      LOG_INFO("streaming: %s %s: bad resize message %s ignored", KindPath(req_.kind), req_.container_id, text);
      continue;
    }
    struct winsize ws = {};
    ws.ws_col = static_cast<unsigned short>(size["Width"].get<uint64_t>());
    ws.ws_row = static_cast<unsigned short>(size["Height"].get<uint64_t>());
    if (::ioctl(io_->tty_fd, TIOCSWINSZ, &ws) != 0) {
      LOG_INFO("streaming: resize the terminal of %s: %s", req_.container_id, strerror(errno));
    }
  }
  if (resize_buf_.size() > 4096) resize_buf_.clear();
}

void RemoteCommand::Gone() {
  out_ = nullptr;
  if (done_) return;
  done_ = true;
  // The client left before the end: the command is ended with its session.
  for (auto& o : outputs_) o->fd->close();
  if (stdin_) stdin_->close();
  if (exited_) exited_->close();
  io_.reset();
}

}  // namespace crius::stream
