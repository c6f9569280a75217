#include "tessera/core/compute_slots.hpp"

namespace tessera {

namespace {
// The slots the calling thread holds one of (null: none), how many Holds
// of them are open on it, and whether it is lending its slot.
thread_local ComputeSlots* t_slots = nullptr;
thread_local int t_depth = 0;
thread_local bool t_lent = false;
}  // namespace

ComputeSlots::ComputeSlots(int slots) : free_(slots < 1 ? 1 : slots) {}

void ComputeSlots::acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
}

void ComputeSlots::release() {
    {
        std::lock_guard lock(mu_);
        ++free_;
    }
    cv_.notify_one();
}

int ComputeSlots::free_slots() const {
    std::lock_guard lock(mu_);
    return free_;
}

ComputeSlots::Hold::Hold(ComputeSlots& slots) : outer_(t_slots), outer_depth_(t_depth), took_(t_slots != &slots) {
    // (another run's slots on this thread, a run inside a run: its own slot
    // of these, the outer one kept, as a thread lending its outer slot
    // would only make the inner run wait on the outer)
    if (took_) {
        slots.acquire();
        t_slots = &slots;
        t_depth = 0;
    }
    ++t_depth;
}

ComputeSlots::Hold::~Hold() {
    if (--t_depth > 0) return;
    if (took_) t_slots->release();
    t_slots = outer_;
    t_depth = outer_depth_;
}

WaitScope::WaitScope() : lent_(t_slots && !t_lent ? t_slots : nullptr) {
    if (!lent_) return;
    t_lent = true;
    lent_->release();
}

WaitScope::~WaitScope() {
    if (!lent_) return;
    lent_->acquire();
    t_lent = false;
}

std::unique_lock<std::mutex> lock_or_lend(std::mutex& mu) {
    std::unique_lock lock(mu, std::try_to_lock);
    if (!lock.owns_lock()) {
        WaitScope wait;
        lock.lock();
    }
    return lock;
}

}  // namespace tessera
