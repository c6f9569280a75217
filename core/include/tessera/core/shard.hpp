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
#include <memory>
#include <string>
#include <vector>

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

// This process's part of a sharded run of one sink.
struct Share {
    std::size_t first = 0, last = 0;  // positions [first, last) of the sink's tile order computed here
    Courier* courier = nullptr;
    bool writer() const { return courier->rank() == 0; }
};

}  // namespace tessera
