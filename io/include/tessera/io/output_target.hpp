// One output file, made whole or not at all: the writer works on a hidden
// temporary name beside the target (the same names as every io writer's,
// io/temp_beside.hpp, so a killed run's leftovers are removed by the next
// run to the target), registered for removal on a signal
// (core/temporaries.hpp); commit() renames it onto the target, and an
// OutputTarget destroyed uncommitted (a failure, a cancel) removes it. The
// side files of the jobs (positions, pairs, reports, pages) use it, so that
// none is ever left half-written or as a stray temporary, and so do the
// writers (io/tiff_pyramid.cpp, io/dzsave.cpp, and the libvips one in
// io/save.cpp).
//
// A GDAL target (/vsimem/...) has no folder: the temporary is a local file
// (temp_beside.hpp) and commit() copies it in through GDAL. A folder output
// (a Deep Zoom pyramid: NAME.dzi and NAME_files/) is made in a temporary
// folder: commit(entries) moves what the writer made in it into the
// target's folder, each old entry of the same name moved aside first and
// removed only once every new one is in (a failure puts the old back). A
// folder cannot be removed from a signal handler: a killed run's is removed
// by the next run to the target.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tessera {

class OutputTarget {
public:
    enum class Kind { file, folder };
    // IoError naming the target when a folder cannot be made beside it.
    // The temporary's name ends in ".tmp" plus `extension` (libvips'
    // vipssave writes only to a name ending in ".v").
    explicit OutputTarget(std::string target, Kind kind = Kind::file, std::string_view extension = {});
    ~OutputTarget();
    OutputTarget(const OutputTarget&) = delete;
    OutputTarget& operator=(const OutputTarget&) = delete;

    const std::string& target() const { return target_; }
    // Where to write (a file in the target's folder).
    const std::string& temp() const { return temp_; }
    // Moves the finished file onto the target (a /vsi target: copies it
    // in); IoError naming the target if it cannot (the temporary is removed
    // then too). Inside a run's finish() it throws Cancelled, with nothing
    // at the target, once the run is stopped: checked before the move and
    // between the copy's chunks (core/stop.hpp).
    void commit();
    // Kind::folder: moves the entries (names in temp()) into the target's
    // folder, then removes temp(); IoError naming the target if it cannot
    // (the old entries are back then, and temp() is removed too). Cancelled
    // as commit(), checked before the first entry moves.
    void commit(const std::vector<std::string>& entries);

private:
    void discard() noexcept;

    std::string target_, temp_;
    Kind kind_;
    int slot_ = -1;
    bool done_ = false;
};

// `bytes` as the file `path`, through an OutputTarget; IoError naming the
// path and `what` it is ("the pairs CSV") when it cannot be written.
void write_output_file(const std::string& path, const std::string& bytes, const std::string& what);

}  // namespace tessera
