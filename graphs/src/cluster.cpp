// The MPI Cluster and Courier (shard.hpp). Only this file includes mpi.h.
//
// The run uses MPI from one thread at a time: the evaluator's serial stage
// and the run's own thread, never its workers; a watch thread listens for
// other ranks' failures beside it (so MPI_THREAD_MULTIPLE).
// Waiting is done by polling (MPI_Test/MPI_Iprobe and a short sleep) rather
// than in a blocking call, so that a cancel (Ctrl-C, or the launcher's
// SIGTERM after another rank failed) is noticed and the sink can clean up.
#include "tessera/graphs/cluster.hpp"

#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "tessera/core/error.hpp"

#ifdef TESSERA_HAVE_MPI
#include <mpi.h>
#endif

namespace tessera {

namespace {

// The job's size as the launcher announces it; 0 when this process was not
// started by an MPI launcher, -1 when started by one that does not say.
int launcher_size() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* s = std::getenv(v)) return std::atoi(s);
    if (std::getenv("PMIX_RANK") || std::getenv("PMI_RANK")) return -1;
    return 0;
}

// srun without an MPI plugin (no --mpi=pmix, the site's MpiDefault=none)
// starts N plain copies: each would run the whole job and write the same
// file, and all would end "successfully". srun says how many tasks the step
// has (a batch script's own shell is not a step task: it has no such
// variable).
void refuse_plain_srun() {
    if (launcher_size() != 0) return;
    const char* n = std::getenv("SLURM_STEP_NUM_TASKS");
    if (!n || std::atoi(n) <= 1) return;
    throw Error("this process is one of " + std::string(n) +
                " tasks srun started without MPI: each would run the whole job and write the same output; "
                "run `srun --mpi=pmix ...` (Debian's OpenMPI speaks PMIx; --mpi=pmi2 does not work with it), "
                "set MpiDefault=pmix in slurm.conf, or start one task (srun -n 1)");
}

}  // namespace

#ifdef TESSERA_HAVE_MPI

namespace {

void check(int rc, const char* what) {
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        throw Error(std::string("MPI: ") + what + " failed: " + std::string(msg, std::size_t(len)));
    }
}

// Polls `done` until it returns true, sleeping a little more each time (up
// to 1 ms); throws Cancelled when the run is cancelled meanwhile.
template <class F>
void poll_until(F done, const std::atomic<bool>* cancel, double& waited) {
    if (done()) return;
    const auto t0 = std::chrono::steady_clock::now();
    struct Count {  // on every way out, the exception included
        std::chrono::steady_clock::time_point t0;
        double& waited;
        ~Count() { waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
    } count{t0, waited};
    for (int sleep_us = 20; !done();) {
        if (cancel && cancel->load()) throw Cancelled();
        std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
        sleep_us = std::min(sleep_us * 2, 1000);
    }
}

// Waits for a non-blocking call to complete (collectives too: a blocking
// one would never return when another rank has failed).
void wait_for(MPI_Request& request, const char* what, const std::atomic<bool>* cancel, double& waited) {
    poll_until(
        [&] {
            int done = 0;
            check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
            return done != 0;
        },
        cancel, waited);
}

class MpiCourier final : public Courier {
public:
    MpiCourier(int rank, int ranks, int tag, const std::atomic<bool>* cancel)
        : rank_(rank), ranks_(ranks), tag_(tag), cancel_(cancel) {}
    ~MpiCourier() override {
        // a run that failed may leave sends in flight: they cannot be
        // waited for (the writer may be gone), so they are cancelled
        for (Pending& p : pending_) {
            MPI_Cancel(&p.request);
            MPI_Request_free(&p.request);
        }
    }

    int rank() const override { return rank_; }
    int ranks() const override { return ranks_; }

    void send(std::vector<std::byte> message) override {
        reap();
        // at most this much in flight: enough to keep the writer fed while
        // this rank computes, small beside a rank's pixel memory
        while (in_flight_ > (64u << 20) || pending_.size() >= 1024) wait_oldest();
        pending_.push_back(Pending{std::move(message), MPI_REQUEST_NULL});
        Pending& p = pending_.back();
        check(MPI_Isend(p.bytes.data(), int(p.bytes.size()), MPI_BYTE, 0, tag_, MPI_COMM_WORLD, &p.request),
              "sending to rank 0");
        in_flight_ += p.bytes.size();
        sent_ += p.bytes.size();
    }

    void flush() override {
        while (!pending_.empty()) wait_oldest();
    }

    bool receive(std::vector<std::byte>& message, bool wait) override {
        MPI_Status status;
        int flag = 0;
        auto probe = [&] {
            check(MPI_Iprobe(MPI_ANY_SOURCE, tag_, MPI_COMM_WORLD, &flag, &status), "waiting for another rank");
            return flag != 0;
        };
        if (wait)
            poll_until(probe, cancel_, waited_);
        else if (!probe())
            return false;
        int count = 0;
        check(MPI_Get_count(&status, MPI_BYTE, &count), "sizing a message");
        message.resize(std::size_t(count));
        check(MPI_Recv(message.data(), count, MPI_BYTE, status.MPI_SOURCE, tag_, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "receiving from another rank");
        return true;
    }

    std::vector<std::byte> broadcast(std::vector<std::byte> bytes) override {
        unsigned long long n = bytes.size();
        MPI_Request r;
        check(MPI_Ibcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD, &r), "broadcast");
        wait_for(r, "broadcast", cancel_, waited_);
        bytes.resize(std::size_t(n));
        check(MPI_Ibcast(bytes.data(), int(n), MPI_BYTE, 0, MPI_COMM_WORLD, &r), "broadcast");
        wait_for(r, "broadcast", cancel_, waited_);
        return bytes;
    }

    std::uint64_t bytes_sent() const override { return sent_; }
    double seconds_waited() const override { return waited_; }

private:
    struct Pending {
        std::vector<std::byte> bytes;
        MPI_Request request;
    };
    // drops the sends that have completed, oldest first
    void reap() {
        while (!pending_.empty()) {
            int done = 0;
            check(MPI_Test(&pending_.front().request, &done, MPI_STATUS_IGNORE), "sending to rank 0");
            if (!done) return;
            in_flight_ -= pending_.front().bytes.size();
            pending_.pop_front();
        }
    }
    void wait_oldest() {
        wait_for(pending_.front().request, "sending to rank 0", cancel_, waited_);
        in_flight_ -= pending_.front().bytes.size();
        pending_.pop_front();
    }

    int rank_, ranks_, tag_;
    const std::atomic<bool>* cancel_;
    std::deque<Pending> pending_;
    std::size_t in_flight_ = 0;
    std::uint64_t sent_ = 0;
    double waited_ = 0;
};

class MpiCluster final : public Cluster {
public:
    MpiCluster() {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks_);
        // errors come back as codes (and become exceptions naming the
        // call), rather than MPI ending the process on its own
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    ~MpiCluster() override {
        stop_watch();
        MPI_Finalize();
    }

    int rank() const override { return rank_; }
    int ranks() const override { return ranks_; }

    std::unique_ptr<Courier> courier(const std::atomic<bool>* cancel) override {
        // one tag per run: a run's messages never match another's
        const int tag = 1 + int(runs_++ % 30000);
        return std::make_unique<MpiCourier>(rank_, ranks_, tag, cancel);
    }

    std::vector<std::vector<std::byte>> gather(std::vector<std::byte> bytes, const std::atomic<bool>* cancel) override {
        int n = int(bytes.size());
        std::vector<int> sizes(rank_ == 0 ? std::size_t(ranks_) : 0);
        double waited = 0;
        MPI_Request r;
        check(MPI_Igather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD, &r), "gather");
        wait_for(r, "gather", cancel, waited);
        std::vector<int> offsets(sizes.size());
        int total = 0;
        for (std::size_t r = 0; r < sizes.size(); ++r) offsets[r] = total, total += sizes[r];
        std::vector<std::byte> all(static_cast<std::size_t>(total));
        check(MPI_Igatherv(bytes.data(), n, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0,
                           MPI_COMM_WORLD, &r),
              "gather");
        wait_for(r, "gather", cancel, waited);
        std::vector<std::vector<std::byte>> out;
        for (std::size_t r = 0; r < sizes.size(); ++r)
            out.emplace_back(all.begin() + offsets[r], all.begin() + offsets[r] + sizes[r]);
        return out;
    }

    void barrier(const std::atomic<bool>* cancel) override {
        double waited = 0;
        MPI_Request r;
        check(MPI_Ibarrier(MPI_COMM_WORLD, &r), "barrier");
        wait_for(r, "barrier", cancel, waited);
    }

    void watch(std::atomic<bool>* cancel) override {
        stop_watch();
        watching_ = true;
        // a thread of its own (MPI_THREAD_MULTIPLE): the run's threads may be
        // deep in computing a tile for a while, and must hear it anyway
        watcher_ = std::thread([this, cancel] {
            while (watching_.load()) {
                int flag = 0;
                MPI_Status st;
                if (MPI_Iprobe(MPI_ANY_SOURCE, kFailTag, MPI_COMM_WORLD, &flag, &st) == MPI_SUCCESS && flag) {
                    int n = 0;
                    MPI_Get_count(&st, MPI_CHAR, &n);
                    std::string text(std::size_t(n), '\0');
                    MPI_Recv(text.data(), n, MPI_CHAR, st.MPI_SOURCE, kFailTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    {
                        std::lock_guard lock(failure_mu_);
                        failure_ = text;
                        failed_rank_ = st.MPI_SOURCE;
                    }
                    cancel->store(true);
                    return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        });
    }

    std::string failure() const override {
        std::lock_guard lock(failure_mu_);
        return failure_;
    }

    [[noreturn]] void fail(int exit_code, const std::string& message) override {
        stop_watch();
        std::vector<MPI_Request> sent;
        for (int r = 0; r < ranks_; ++r) {
            if (r == rank_) continue;
            sent.emplace_back();
            MPI_Isend(message.data(), int(message.size()), MPI_CHAR, r, kFailTag, MPI_COMM_WORLD, &sent.back());
        }
        // every other rank acknowledges once it has cleaned up (or also
        // failed, and is waiting for acknowledgments itself)
        int heard = 0;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (heard < ranks_ - 1 && std::chrono::steady_clock::now() < until) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
            if (flag && (st.MPI_TAG == kAckTag || st.MPI_TAG == kFailTag)) {
                int n = 0;
                MPI_Get_count(&st, MPI_BYTE, &n);
                std::vector<char> sink(std::size_t(std::max(n, 1)));
                MPI_Recv(sink.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                ++heard;
            } else if (flag) {
                // a message of the run (e.g. a producer's tile): dropped
                int n = 0;
                MPI_Get_count(&st, MPI_BYTE, &n);
                std::vector<char> sink(std::size_t(std::max(n, 1)));
                MPI_Recv(sink.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        }
        MPI_Abort(MPI_COMM_WORLD, exit_code);
        std::_Exit(exit_code);  // MPI_Abort does not return; should it, end anyway
    }

    [[noreturn]] void acknowledge() override {
        int to = 0;
        {
            std::lock_guard lock(failure_mu_);
            to = failed_rank_;
        }
        MPI_Request r;
        char ok = 1;
        MPI_Isend(&ok, 1, MPI_BYTE, to, kAckTag, MPI_COMM_WORLD, &r);
        // the failed rank ends the job once every rank has answered; if it
        // never does (it died), end after a while
        for (int i = 0; i < 600; ++i) {
            int done = 0;
            MPI_Test(&r, &done, MPI_STATUS_IGNORE);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::_Exit(1);
    }

private:
    // tags above the runs' (1..30000)
    static constexpr int kFailTag = 32001, kAckTag = 32002;

    void stop_watch() {
        watching_ = false;
        if (watcher_.joinable()) watcher_.join();
    }

    int rank_ = 0, ranks_ = 1;
    unsigned runs_ = 0;
    std::thread watcher_;
    std::atomic<bool> watching_{false};
    mutable std::mutex failure_mu_;
    std::string failure_;
    int failed_rank_ = 0;
};

}  // namespace

bool mpi_available() { return true; }

std::unique_ptr<Cluster> join_cluster(int* argc, char*** argv) {
    refuse_plain_srun();
    if (launcher_size() == 0 || launcher_size() == 1) return nullptr;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        throw Error("MPI: MPI_Init_thread failed; is this process started by mpirun or srun of the same MPI?");
    if (provided < MPI_THREAD_MULTIPLE) {
        MPI_Finalize();
        throw Error("MPI: this MPI library cannot be called from several threads at once (MPI_THREAD_MULTIPLE), "
                    "which the failure watch needs");
    }
    auto c = std::make_unique<MpiCluster>();
    if (c->ranks() == 1) return nullptr;  // finalised by the destructor
    return c;
}

#else  // built without MPI

bool mpi_available() { return false; }

std::unique_ptr<Cluster> join_cluster(int*, char***) {
    refuse_plain_srun();
    const int n = launcher_size();
    if (n > 1 || n < 0)
        throw Error("this process was started by an MPI launcher (mpirun/srun), but tessera was built without MPI: "
                    "every rank would write the same output; rebuild with -DTESSERA_MPI=ON (needs libopenmpi-dev) "
                    "or run it without the launcher");
    return nullptr;
}

#endif

}  // namespace tessera
