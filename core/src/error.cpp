#include "tessera/core/error.hpp"

#include <sys/stat.h>

namespace tessera {

namespace {
std::string compose(const std::string& node, const std::string& op, const std::string& key, const std::string& msg) {
    std::string s;
    if (!node.empty()) s += "node '" + node + "'";
    if (!op.empty()) s += (s.empty() ? "op '" : " (op ") + op + (s.empty() ? "'" : ")");
    if (!key.empty()) s += (s.empty() ? "" : ", ") + std::string("key '") + key + "'";
    return s.empty() ? msg : s + ": " + msg;
}
}  // namespace

GraphError::GraphError(std::string node, std::string op, std::string key, const std::string& message, std::string path)
    : Error(compose(node, op, key, message)),
      node_(std::move(node)),
      op_(std::move(op)),
      key_(std::move(key)),
      message_(message),
      path_(std::move(path)) {}

void refuse_special_file(const std::string& path, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return;
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO (named pipe)"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                                              : "not a regular file";
    throw IoError(path, std::string("is ") + kind + ", not a regular file; " + what +
                            " must be a regular file (reading a pipe or device could block or never end)");
}

}  // namespace tessera
