// Tiles waiting to be encoded, internal to io/: the one queue of the
// streaming writers (tiff_pyramid.cpp, dzsave.cpp).
//
// A pyramid writer makes most of its tiles in the serial stage (when the
// 2x2 group of blocks a tile is made of completes), and encoding them there
// would serialise the run. So the serial stage queues them (push), the
// evaluator's workers take them up in prepare() beside their own tile (run),
// and finish() runs what is left on the run's thread budget (drain,
// SinkContext::threads: never more threads than --threads asked for). Two
// orders:
//  - Order::any: a job is done with when its work returns (a Deep Zoom tile
//    is its own file);
//  - Order::kept: finished jobs are handed back by retire() in the order
//    they were queued (a TIFF's tiles go into one file, whose bytes must not
//    depend on which thread finished first).
// Every job's pixels are charged to the run's memory account until it is
// done with (any: when its work returns; kept: when retired).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tessera/core/buffer.hpp"

namespace tessera::io {

template <class Job>
class EncodeQueue {
public:
    enum class Order { any, kept };
    // `work` encodes one job, on any thread.
    EncodeQueue(std::function<void(Job&)> work, Order order) : work_(std::move(work)), order_(order) {}
    ~EncodeQueue() { clear(); }
    EncodeQueue(const EncodeQueue&) = delete;
    EncodeQueue& operator=(const EncodeQueue&) = delete;

    // At the sink's start: the run's account and thread budget.
    void start(MemoryAccount* account, int threads) {
        clear();
        account_ = account;
        threads_ = std::max(threads, 1);
    }

    // Serial: queues a job whose pixels hold `charged` bytes.
    void push(Job job, std::size_t charged) {
        auto e = std::make_shared<Entry>(std::move(job), charged);
        if (account_) account_->charge(charged);
        if (order_ == Order::kept) kept_.push_back(e);
        {
            std::lock_guard lock(mu_);
            pending_.push_back(std::move(e));
        }
        more_.notify_one();
    }

    // Any thread: runs up to `most` queued jobs (all: -1); how many ran.
    int run(int most = 1) {
        int n = 0;
        for (; most < 0 || n < most; ++n) {
            std::shared_ptr<Entry> e;
            {
                std::lock_guard lock(mu_);
                if (pending_.empty()) break;
                e = std::move(pending_.front());
                pending_.pop_front();
            }
            room_.notify_one();
            if (order_ == Order::any) {
                struct Release {  // also when the work throws
                    MemoryAccount* a;
                    std::size_t n;
                    ~Release() {
                        if (a) a->release(n);
                    }
                } release{account_, e->charged};
                work_(e->job);
            } else {
                work_(e->job);
                e->done.store(true, std::memory_order_release);
            }
        }
        return n;
    }

    // Jobs queued and not yet taken by a thread.
    std::size_t queued() const {
        std::lock_guard lock(mu_);
        return pending_.size();
    }

    // Order::kept, serial: f(job) for each finished job at the head of the
    // queue's order, each then done with; stops at the first unfinished.
    template <class F>
    void retire(F&& f) {
        while (!kept_.empty() && kept_.front()->done.load(std::memory_order_acquire)) {
            Entry& e = *kept_.front();
            f(e.job);
            if (account_) account_->release(e.charged);
            kept_.pop_front();
        }
    }
    // Order::kept: every job queued was retired.
    bool all_retired() const { return kept_.empty(); }

    // finish(): runs every queued job, and those queued meanwhile, on the
    // thread budget. With `feed`, the calling thread calls it whenever fewer
    // than `room` jobs wait, while it returns true (a sharded writer takes
    // in the producers' parts there, which queue more jobs; `room` keeps
    // what it holds bounded however fast they send). The first error of a
    // worker or of feed is rethrown once every thread has stopped.
    void drain(const std::function<bool()>& feed = {}, std::size_t room = std::numeric_limits<std::size_t>::max()) {
        const int n = feed || threads_ > 1 ? threads_ : 0;
        if (n == 0) {  // one thread: this one
            run(-1);
            return;
        }
        std::vector<std::exception_ptr> errors(std::size_t(n) + 1);
        {
            std::lock_guard lock(mu_);
            feeding_ = bool(feed);
            workers_ = n;
        }
        std::vector<std::thread> pool;
        for (int i = 0; i < n; ++i)
            pool.emplace_back([this, i, &errors] {
                try {
                    for (;;) {
                        run(-1);
                        std::unique_lock lock(mu_);
                        if (pending_.empty() && !feeding_) break;
                        more_.wait(lock, [this] { return !pending_.empty() || !feeding_; });
                    }
                } catch (...) {
                    errors[std::size_t(i)] = std::current_exception();
                }
                {
                    std::lock_guard lock(mu_);
                    --workers_;
                }
                room_.notify_all();
            });
        if (feed) {
            try {
                for (;;) {
                    {
                        std::unique_lock lock(mu_);
                        room_.wait(lock, [&] { return pending_.size() < room || workers_ == 0; });
                        if (workers_ == 0) break;  // their error is thrown below
                    }
                    if (!feed()) break;
                }
            } catch (...) {
                errors[std::size_t(n)] = std::current_exception();
                drop_pending();  // failed or cancelled: no need to encode the rest
            }
            {
                std::lock_guard lock(mu_);
                feeding_ = false;
            }
            more_.notify_all();
        }
        for (auto& t : pool) t.join();
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
    }

    // Drops every job not yet done with (abort, or a second start).
    void clear() noexcept {
        if (order_ == Order::kept) {
            {
                std::lock_guard lock(mu_);
                pending_.clear();
            }
            for (auto& e : kept_)
                if (account_) account_->release(e->charged);
            kept_.clear();
        } else {
            drop_pending();
        }
    }

private:
    struct Entry {
        Entry(Job j, std::size_t c) : job(std::move(j)), charged(c) {}
        Job job;
        std::size_t charged;
        std::atomic<bool> done{false};
    };

    void drop_pending() noexcept {
        std::lock_guard lock(mu_);
        if (order_ == Order::any)
            for (auto& e : pending_)
                if (account_) account_->release(e->charged);
        pending_.clear();
    }

    std::function<void(Job&)> work_;
    Order order_;
    MemoryAccount* account_ = nullptr;
    int threads_ = 1;
    mutable std::mutex mu_;
    std::condition_variable more_;                // a job was queued, or feeding ended
    std::condition_variable room_;                // a job was taken, or a worker ended
    std::deque<std::shared_ptr<Entry>> pending_;  // under mu_: not yet taken
    std::deque<std::shared_ptr<Entry>> kept_;     // Order::kept, serial: not yet retired, in queue order
    bool feeding_ = false;                        // under mu_
    int workers_ = 0;                             // under mu_
};

}  // namespace tessera::io
