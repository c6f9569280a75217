#include "file_cache.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <list>
#include <sys/resource.h>
#include <memory>
#include <mutex>
#include <unistd.h>
#include <unordered_map>

#include "tessera/core/error.hpp"

namespace tessera::io {

int default_max_open_files() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 64;
    return int(std::clamp<rlim_t>(rl.rlim_cur / 4, 4, 256));
}

namespace {

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

struct State {
    mutable std::mutex mu;
    int limit = default_max_open_files();
    std::list<std::pair<std::string, std::shared_ptr<Fd>>> lru;  // front: most recent
    std::unordered_map<std::string, decltype(lru)::iterator> map;

    std::shared_ptr<Fd> get(const std::string& path) {
        {
            std::lock_guard lock(mu);
            auto it = map.find(path);
            if (it != map.end()) {
                lru.splice(lru.begin(), lru, it->second);
                return it->second->second;
            }
        }
        auto f = std::make_shared<Fd>();
        f->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (f->fd < 0) {
            int e = errno;
            std::string hint = e == EMFILE || e == ENFILE
                                   ? "; too many open files: lower max_open_files or raise ulimit -n"
                               : e == ENOENT ? "; check the path"
                               : e == EACCES ? "; check its permissions"
                                             : "";
            throw IoError(path, std::string("cannot open: ") + std::strerror(e) + hint);
        }
        std::lock_guard lock(mu);
        auto it = map.find(path);
        if (it != map.end()) return it->second->second;  // another thread won the race
        lru.emplace_front(path, f);
        map.emplace(path, lru.begin());
        while (int(lru.size()) > limit) {
            map.erase(lru.back().first);
            lru.pop_back();  // closes once no reader holds it
        }
        return f;
    }
};

State& state() {
    static State s;
    return s;
}

}  // namespace

FileCache& FileCache::instance() {
    static FileCache c;
    return c;
}

void FileCache::set_limit(int max_open) {
    State& s = state();
    std::lock_guard lock(s.mu);
    s.limit = max_open < 1 ? 1 : max_open;
    while (int(s.lru.size()) > s.limit) {
        s.map.erase(s.lru.back().first);
        s.lru.pop_back();
    }
}

void FileCache::close(const std::string& path) {
    State& s = state();
    std::lock_guard lock(s.mu);
    auto it = s.map.find(path);
    if (it == s.map.end()) return;
    s.lru.erase(it->second);
    s.map.erase(it);
}

int FileCache::open_count() const {
    std::lock_guard lock(state().mu);
    return int(state().lru.size());
}

std::size_t FileCache::read(const std::string& path, std::uint64_t offset, void* buf, std::size_t n) {
    std::shared_ptr<Fd> f = state().get(path);
    std::size_t done = 0;
    while (done < n) {
        ssize_t r = ::pread(f->fd, static_cast<char*>(buf) + done, n - done, off_t(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw IoError(path, std::string("read failed: ") + std::strerror(errno));
        }
        if (r == 0) break;
        done += std::size_t(r);
    }
    return done;
}

}  // namespace tessera::io
