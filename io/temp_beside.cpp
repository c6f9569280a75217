#include "temp_beside.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>

#include "gdal_common.hpp"

namespace fs = std::filesystem;

namespace tessera::io {

namespace {

// This machine's name, as it goes into temporary names ('/' cannot be in a
// file name; the rest can).
const std::string& host_name() {
    static const std::string name = [] {
        char buf[256] = {};
        if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return std::string("localhost");
        std::string s(buf);
        for (char& c : s)
            if (c == '/') c = '_';
        return s;
    }();
    return name;
}

fs::path folder_of(const std::string& target) {
    if (is_vsi_path(target)) return fs::temp_directory_path();
    fs::path dir = fs::path(target).parent_path();
    return dir.empty() ? fs::path(".") : dir;
}

// What every temporary name of `target` made on this host starts with.
std::string prefix_of(const std::string& target) {
    return "." + fs::path(target).filename().string() + ".tessera-" + host_name() + "-";
}

}  // namespace

std::string temp_beside(const std::string& target, std::string_view suffix) {
    static std::atomic<unsigned> counter{0};
    const std::string name = prefix_of(target) + std::to_string(::getpid()) + "-" +
                             std::to_string(counter.fetch_add(1)) + std::string(suffix);
    return (folder_of(target) / name).string();
}

std::vector<std::string> remove_stale_temporaries(const std::string& target) {
    std::vector<std::string> removed;
    const std::string prefix = prefix_of(target);
    std::error_code ec;
    fs::directory_iterator it(folder_of(target), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        // the process id, then '-'
        std::size_t at = prefix.size();
        long long pid = 0;
        while (at < name.size() && at < prefix.size() + 10 && name[at] >= '0' && name[at] <= '9')
            pid = pid * 10 + (name[at++] - '0');
        if (at == prefix.size() || at >= name.size() || name[at] != '-' || pid <= 0 || pid > 0x7fffffff) continue;
        // alive (ours, or another run's on this target right now), or not
        // ours to judge (EPERM: alive, another user's)
        if (pid == ::getpid() || ::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;
        std::error_code rm;
        fs::remove_all(it->path(), rm);
        if (!rm) removed.push_back(name);
    }
    return removed;
}

}  // namespace tessera::io
