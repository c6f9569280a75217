// A run's stop check for the serial work after its last tile.
//
// A run that is cancelled (its token, a signal, its progress callback
// returning false) stops between tiles. What a sink does in Sink::finish()
// after the last one would not: the final copy of a finished file into a
// GDAL virtual file system (/vsimem/, /vsizip/), a MiB at a time, takes
// seconds for gigabytes, and SIGTERM must stop a job within one. So the
// evaluator installs its run's check (a StopScope) on the thread that
// calls finish(), for that call, and the writers' common step
// (OutputTarget::commit) asks it before the rename and between the chunks
// of the copy, through throw_if_stopped(). Thread-local, so that runs on
// other threads keep their own, and so that every writer's commit has it
// without each passing it through its SinkContext.
#pragma once

#include <functional>

namespace tessera {

class StopScope {
public:
    // `stop` returns true once the run is to stop; it is called on this
    // thread only, from throw_if_stopped(), and may ask the run's progress
    // callback.
    explicit StopScope(std::function<bool()> stop);
    ~StopScope();  // the scope it hid is back
    StopScope(const StopScope&) = delete;
    StopScope& operator=(const StopScope&) = delete;

private:
    friend void throw_if_stopped();
    std::function<bool()> stop_;
    const StopScope* outer_;
};

// Throws Cancelled when this thread's innermost StopScope says stop; does
// nothing outside one (a sink driven by hand, a side file written outside
// a run).
void throw_if_stopped();

}  // namespace tessera
