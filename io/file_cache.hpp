// A bounded cache of open file descriptors, internal to io/: thousands of
// sources share a few descriptors. Readers use pread, so one descriptor can
// serve many threads at once; evicted descriptors close when their last
// reader is done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera::io {

// The default limit of each open-file cache: a quarter of the process's
// descriptor limit (ulimit -n), between 4 and 256, so that many inputs work
// under a low ulimit without setting anything.
int default_max_open_files();

class FileCache {
public:
    static FileCache& instance();
    void set_limit(int max_open);
    // Up to n bytes of `path` at `offset` into buf; returns the bytes read
    // (0 at the end of the file). Throws IoError naming the path.
    std::size_t read(const std::string& path, std::uint64_t offset, void* buf, std::size_t n);
    int open_count() const;
    // Drops `path`'s descriptor (closed once no reader holds it): its
    // source let go of it (Op::release), e.g. after a failed run.
    void close(const std::string& path);
};

}  // namespace tessera::io
