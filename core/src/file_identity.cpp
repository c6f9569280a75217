#include "tessera/core/file_identity.hpp"

#include <sys/stat.h>

namespace tessera {

std::optional<FileIdentity> file_identity(const std::string& path) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return std::nullopt;
    return FileIdentity{st.st_dev, st.st_ino};
}

}  // namespace tessera
