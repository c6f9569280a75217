// A run's thread budget, kept while its threads wait on each other.
//
// A run computes its tiles on `threads` threads. A tile that needs rows a
// streaming decoder is making for another tile waits for that decoder (two
// neighbouring tiles over one scan: the first to arrive decodes the band's
// rows for both), and its core sits idle meanwhile: at 2 threads on the
// mid stitch, 0.28 s of a 1.9 s run. So the evaluator runs one thread more
// than the budget and hands out `threads` slots: a thread holds one
// (ComputeSlots::Hold) while it computes or writes a tile, and lends it
// (a WaitScope around the wait) while it waits for another thread, for
// the spare thread to compute with meanwhile. No more than `threads`
// threads compute at once, and which thread computes a tile never changes
// its pixels. (TBB's own answer, resumable tasks, would need tiles to
// start in an order the sink does not ask for.)
//
// Thread-local, like StopScope: a decoder deep in a source lends the slot
// of whichever run's thread it is on, without the run passing it down, and
// outside a run (a sink driven by hand, a test) a WaitScope does nothing.
#pragma once

#include <condition_variable>
#include <mutex>

namespace tessera {

class ComputeSlots {
public:
    explicit ComputeSlots(int slots);
    ComputeSlots(const ComputeSlots&) = delete;
    ComputeSlots& operator=(const ComputeSlots&) = delete;

    // The calling thread's slot for the scope's life; waits for one. A
    // thread that holds a slot of these already keeps that one (a stage
    // that calls another on its own thread takes no second slot).
    class Hold {
    public:
        explicit Hold(ComputeSlots& slots);
        ~Hold();
        Hold(const Hold&) = delete;
        Hold& operator=(const Hold&) = delete;

    private:
        ComputeSlots* outer_;
        int outer_depth_;
        bool took_;
    };

    int free_slots() const;  // (for tests)

private:
    friend class WaitScope;
    void acquire();
    void release();
    mutable std::mutex mu_;
    std::condition_variable cv_;
    int free_;
};

// While alive, the calling thread's slot (if it holds one, and is not
// lending it already) is lent; taken back, waiting for it if need be, at
// the scope's end. Wrap a wait for another thread in one, never work.
class WaitScope {
public:
    WaitScope();
    ~WaitScope();
    WaitScope(const WaitScope&) = delete;
    WaitScope& operator=(const WaitScope&) = delete;

private:
    ComputeSlots* lent_;
};

// `mu` locked; when another thread holds it (it is decoding what this one
// needs too), the wait is a WaitScope's. The sources' decoders and block
// caches take their per-block and per-decoder locks with it.
std::unique_lock<std::mutex> lock_or_lend(std::mutex& mu);

}  // namespace tessera
