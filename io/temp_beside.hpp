// Temporary names beside a target, and the removal of those a killed run
// left behind. Private to io/.
//
// Every writer makes its output under a hidden name in the target's folder
// and renames it onto the target at the end: ".NAME.tessera-HOST-PID-N"
// plus a suffix. A run that fails or is cancelled removes its own. One that
// is killed outright cannot: the OOM killer, or mpirun's SIGKILL a few
// milliseconds after SIGTERM, leave a file behind, and a Deep Zoom folder of
// thousands of files cannot be removed from a signal handler at all. So a
// writer, before it makes its own, removes those an earlier run on the same
// target left: same host, and a process id that no longer exists. Names
// from other hosts (a shared file system under MPI) are left alone, since
// their process ids mean nothing here; so are those of live processes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tessera::io {

// A fresh hidden name for `target` + `suffix`, in the target's folder (in the
// system's temporary folder for a GDAL /vsi target, which has none).
std::string temp_beside(const std::string& target, std::string_view suffix);

// Removes (recursively) what dead processes of this host left under
// temp_beside names of `target`; returns the names removed. Never throws:
// what cannot be removed is left as it is.
std::vector<std::string> remove_stale_temporaries(const std::string& target);

}  // namespace tessera::io
