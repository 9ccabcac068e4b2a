// One exec or attach session of the remotecommand protocol, whatever
// carries it: channels 0 stdin, 1 stdout, 2 stderr, 3 error (the outcome),
// 4 resize (terminal size as JSON {"Width":W,"Height":H}).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

#include "absl/status/statusor.h"
#include "stream/server.h"

namespace crius::stream {

enum Channel { kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4 };

// Protocol versions, by what they change: v1 and v2 report failures as
// text, v3 adds resize, v4 reports the outcome as a Kubernetes Status, v5
// lets the client close stdin on its own (WebSocket).
enum class RcVersion { kV1 = 1, kV2, kV3, kV4, kV5 };

// The outcome as the error channel carries it; empty for a success before v4.
std::string OutcomeMessage(RcVersion version, const absl::StatusOr<int>& exit_code);

class RemoteCommand : public std::enable_shared_from_this<RemoteCommand> {
 public:
  // Where the session's output goes: the connection's adapter.
  class Out {
   public:
    virtual ~Out() = default;
    virtual void Send(int channel, std::string data) = 0;
    virtual void Fin(int channel) = 0;  // no more on this channel
    virtual void Close() = 0;           // everything sent: close the connection
  };

  RemoteCommand(boost::asio::any_io_executor ex, Backend* backend, Request req, RcVersion version, Out* out);

  // Every stream the client must open is there: run the command (or attach).
  void Begin();
  // From the client: stdin bytes or a resize message.
  void Input(int channel, std::string data);
  // The client closed its side of a channel (stdin: the command sees EOF).
  void InputEnd(int channel);
  // The connection is gone: the command is ended, nothing more is sent.
  void Gone();

  const Request& request() const { return req_; }

 private:
  struct Output {
    std::unique_ptr<boost::asio::posix::stream_descriptor> fd;
    int channel;  // stdout or stderr; -1: tagged packets
    bool open = true;
    std::vector<char> buf;
  };

  void ReadOutput(Output& o);
  void Emit(Output& o, const char* data, size_t n);
  void Drain();
  void WriteStdin();
  void Resize(const std::string& data);
  void Done();
  void Fail(const absl::Status& st);
  bool AllOutputsClosed() const;

  boost::asio::any_io_executor ex_;
  Backend* const backend_;
  const Request req_;
  const RcVersion version_;
  Out* out_;
  std::unique_ptr<Io> io_;
  bool begun_ = false;
  bool done_ = false;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> stdin_;
  std::deque<std::string> stdin_queue_;
  bool stdin_writing_ = false;
  bool stdin_end_ = false;
  std::unique_ptr<boost::asio::posix::stream_descriptor> exited_;
  std::string resize_buf_;
  // Input that came before Begin (streams open in any order).
  std::vector<std::pair<int, std::string>> early_;
};

}  // namespace crius::stream
