#include "tessera/core/temporaries.hpp"

#include <atomic>
#include <cstring>
#include <unistd.h>

namespace tessera {

namespace {

// Fixed slots, no allocation: the handler may run at any moment.
struct Slot {
    std::atomic<int> state{0};  // 0 free, 1 being filled or emptied, 2 holds a path
    char path[4096];
};
Slot g_slots[64];

}  // namespace

int track_temporary(const std::string& path) {
    if (path.size() >= sizeof g_slots[0].path) return -1;
    for (int i = 0; i < int(std::size(g_slots)); ++i) {
        int free = 0;
        if (!g_slots[i].state.compare_exchange_strong(free, 1)) continue;
        std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
        g_slots[i].state.store(2);
        return i;
    }
    return -1;
}

void untrack_temporary(int slot) {
    if (slot >= 0 && slot < int(std::size(g_slots))) g_slots[slot].state.store(0);
}

void remove_temporaries_now() noexcept {
    for (Slot& s : g_slots)
        if (s.state.load() == 2) ::unlink(s.path);
}

}  // namespace tessera
