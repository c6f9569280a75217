// Temporary files that must not outlive a killed process.
//
// Writers make their output beside the target and rename it at the end; a
// run that fails or is cancelled removes it. A process stopped by a signal
// may not get that far: OpenMPI's mpirun, for one, sends SIGKILL a few
// milliseconds after SIGTERM. So writers register their temporary files
// here, and a signal handler removes them at once with
// remove_temporaries_now(), which only calls unlink() (async-signal-safe).
#pragma once

#include <string>

namespace tessera {

// Registers a path; returns its slot (-1 if every slot is taken: the file is
// then only removed the ordinary way).
int track_temporary(const std::string& path);
// The file is gone or renamed: forget it.
void untrack_temporary(int slot);
// From a signal handler: unlinks every registered path.
void remove_temporaries_now() noexcept;

}  // namespace tessera
