// Errors. A user error says what is wrong, where (file, node, op, key) and
// what to do next; internal invariants are asserts, not exceptions.
#pragma once

#include <stdexcept>
#include <string>

namespace tessera {

// The base of every error Tessera reports to users.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A bad parameter value or combination, raised by an op while it is built.
// The graph layer adds the node id when it rethrows it as a GraphError.
class ParamError : public Error {
public:
    ParamError(std::string key, const std::string& what) : Error(what), key_(std::move(key)) {}
    const std::string& key() const { return key_; }

private:
    std::string key_;
};

// An error tied to a pipeline node: what() reads
//   node 'ID' (op OP), key 'KEY': MESSAGE
// with the parts that are known. A file that failed while the node was
// computed (an IoError inside a run) keeps its path(), so a caller can tell
// a file that went bad from a graph that is wrong (the Python package
// raises the first as IoError) without parsing the message.
class GraphError : public Error {
public:
    GraphError(std::string node, std::string op, std::string key, const std::string& message, std::string path = {});
    const std::string& node() const { return node_; }
    const std::string& op() const { return op_; }
    const std::string& key() const { return key_; }
    const std::string& message() const { return message_; }
    // The file whose read or write failed; empty when no file is to blame.
    const std::string& path() const { return path_; }

private:
    std::string node_, op_, key_, message_, path_;
};

// A failure reading or writing a file; what() names the file.
class IoError : public Error {
public:
    IoError(std::string path, const std::string& message)
        : Error("'" + path + "': " + message), path_(std::move(path)) {}
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Only regular files are read as inputs: throws IoError naming `path` if it
// is a FIFO, a socket or a character or block device (opening a FIFO
// blocks until a writer comes; /dev/zero never ends). Anything else,
// including a path that does not exist or a folder, is the caller's to
// judge. `what` says what the file is for ("the positions file").
void refuse_special_file(const std::string& path, const std::string& what);

// Raised inside a run when it was cancelled (token, progress callback, signal).
class Cancelled : public Error {
public:
    Cancelled() : Error("cancelled") {}
};

}  // namespace tessera
