#include "tessera/core/error.hpp"

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

GraphError::GraphError(std::string node, std::string op, std::string key, const std::string& message)
    : Error(compose(node, op, key, message)),
      node_(std::move(node)),
      op_(std::move(op)),
      key_(std::move(key)),
      message_(message) {}

}  // namespace tessera
