// Which file a path names, for the checks that an output is not one of a
// job's inputs (the graph's sinks against its sources, the jobs' side files
// against their tiles): device and inode, links followed, so a symlink or a
// hard link to a file is that file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

namespace tessera {

using FileIdentity = std::pair<dev_t, ino_t>;

// What `path` names, if it exists (empty path: nothing).
std::optional<FileIdentity> file_identity(const std::string& path);

// Whether both paths exist and name the same file.
inline bool same_file(const std::string& a, const std::string& b) {
    const auto id = file_identity(a);
    return id && file_identity(b) == id;
}

}  // namespace tessera
