// Sharded runs: one output computed by several processes ("ranks", e.g. the
// processes of an MPI job), each computing a disjoint share of a sink's
// tiles; rank 0 also writes the file.
//
// The transport is behind two interfaces so that sinks (io/) and the
// evaluator (graphs/) never see it: graphs/cluster.hpp makes an MPI Cluster
// when the process was started by mpirun or srun.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "tessera/core/error.hpp"

namespace tessera {

// The messages of one sink's run between its ranks: every rank > 0 (a
// producer) sends to rank 0 (the writer). A message is the sink's own
// encoding; the courier only moves bytes. Messages from one producer arrive
// in the order they were sent. Made for one run of one sink, used only from
// the evaluator's serial stage and the sink's start()/finish() (never from
// two threads at once).
class Courier {
public:
    virtual ~Courier() = default;
    virtual int rank() const = 0;
    virtual int ranks() const = 0;
    // Producer: queues a message for the writer and returns, unless too much
    // is in flight already (then it waits, which bounds a producer's memory
    // when the writer falls behind). Throws Cancelled if the run is
    // cancelled while it waits.
    virtual void send(std::vector<std::byte> message) = 0;
    // Producer: returns once every message sent has left this process.
    virtual void flush() = 0;
    // Writer: the next message from any producer into `message`. With
    // wait = false returns false at once when none has arrived; with wait =
    // true waits for one (throws Cancelled if the run is cancelled).
    virtual bool receive(std::vector<std::byte>& message, bool wait) = 0;
    // Collective (every rank calls it): every rank gets rank 0's bytes.
    virtual std::vector<std::byte> broadcast(std::vector<std::byte> bytes) = 0;
    // Bytes this rank has sent so far, and the seconds it spent waiting in
    // send(), flush() and receive() (for a writer, on the producers).
    virtual std::uint64_t bytes_sent() const = 0;
    virtual double seconds_waited() const = 0;
};

// The process group. Collective calls must be made by every rank in the
// same order: the evaluator does so, one sink run at a time.
class Cluster {
public:
    virtual ~Cluster() = default;
    virtual int rank() const = 0;
    virtual int ranks() const = 0;
    // A courier for the next sink run (collective). `cancel` is polled while
    // it waits.
    virtual std::unique_ptr<Courier> courier(const std::atomic<bool>* cancel) = 0;
    // Collective: rank 0 gets every rank's bytes, in rank order; the others
    // get an empty list. Like every wait here, throws Cancelled if `cancel`
    // is set meanwhile (a rank that failed never arrives).
    virtual std::vector<std::vector<std::byte>> gather(std::vector<std::byte> bytes,
                                                       const std::atomic<bool>* cancel) = 0;
    // Collective: returns when every rank has called it.
    virtual void barrier(const std::atomic<bool>* cancel) = 0;
    // Failure. A launcher's own teardown gives a rank milliseconds between
    // SIGTERM and SIGKILL (OpenMPI's mpirun), too little to clean up, so a
    // rank that fails tells the others first:
    //  - watch(cancel): from now on, a failure reported by another rank sets
    //    *cancel (the run then stops and its sink removes what it wrote);
    //    failure() is then that rank's message;
    //  - fail(): this rank failed (and has cleaned up): tells every other
    //    rank, waits (a few seconds at most) until each has acknowledged,
    //    then ends the whole job;
    //  - acknowledge(): this rank has cleaned up after another's failure;
    //    waits for the job to be ended.
    virtual void watch(std::atomic<bool>* cancel) = 0;
    virtual std::string failure() const = 0;
    [[noreturn]] virtual void fail(int exit_code, const std::string& message) = 0;
    [[noreturn]] virtual void acknowledge() = 0;
};

// Small messages between ranks built from plain values and strings (the
// ranks run one build: native sizes and byte order, no conversion).
class MessageWriter {
public:
    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto* p = reinterpret_cast<const std::byte*>(&v);
        bytes_.insert(bytes_.end(), p, p + sizeof v);
    }
    void put(const std::string& s) {
        put(std::uint32_t(s.size()));
        const auto* p = reinterpret_cast<const std::byte*>(s.data());
        bytes_.insert(bytes_.end(), p, p + s.size());
    }
    // A run of bytes (e.g. a compressed tile), its length first.
    void put_bytes(std::span<const std::byte> b) {
        put(std::uint64_t(b.size()));
        bytes_.insert(bytes_.end(), b.begin(), b.end());
    }
    std::vector<std::byte>& bytes() { return bytes_; }

private:
    std::vector<std::byte> bytes_;
};

// Reads what a MessageWriter put, from `at` on; a message cut short is an
// Error naming `what`.
class MessageReader {
public:
    MessageReader(const std::vector<std::byte>& bytes, std::size_t at, std::string what)
        : bytes_(bytes), at_(at), what_(std::move(what)) {}
    template <class T>
    T get() {
        static_assert(std::is_trivially_copyable_v<T>);
        T v{};
        take(&v, sizeof v);
        return v;
    }
    std::string get_string() {
        std::string s(get<std::uint32_t>(), '\0');
        take(s.data(), s.size());
        return s;
    }
    // What put_bytes put: a view into the message (valid while it lives).
    std::span<const std::byte> get_bytes() {
        const auto n = get<std::uint64_t>();
        if (bytes_.size() - at_ < n) throw Error("internal: " + what_ + " from another rank are cut short");
        const std::span<const std::byte> v(bytes_.data() + at_, std::size_t(n));
        at_ += std::size_t(n);
        return v;
    }
    bool done() const { return at_ == bytes_.size(); }

private:
    void take(void* dst, std::size_t n) {
        if (bytes_.size() - at_ < n) throw Error("internal: " + what_ + " from another rank are cut short");
        if (n) std::memcpy(dst, bytes_.data() + at_, n);
        at_ += n;
    }
    const std::vector<std::byte>& bytes_;
    std::size_t at_;
    std::string what_;
};

// This process's part of a sharded run of one sink.
struct Share {
    std::size_t first = 0, last = 0;  // positions [first, last) of the sink's tile order computed here
    Courier* courier = nullptr;
    bool writer() const { return courier->rank() == 0; }
};

}  // namespace tessera
