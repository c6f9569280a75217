// One output file, made whole or not at all: the writer works on a hidden
// temporary name beside the target (the same names as every io writer's,
// io/temp_beside.hpp, so a killed run's leftovers are removed by the next
// run to the target), registered for removal on a signal
// (core/temporaries.hpp); commit() renames it onto the target, and an
// OutputTarget destroyed uncommitted (a failure, a cancel) removes it. The
// side files of the jobs (positions, pairs, reports, pages) use it, so that
// none is ever left half-written or as a stray temporary.
#pragma once

#include <string>

namespace tessera {

class OutputTarget {
public:
    explicit OutputTarget(std::string target);
    ~OutputTarget();
    OutputTarget(const OutputTarget&) = delete;
    OutputTarget& operator=(const OutputTarget&) = delete;

    const std::string& target() const { return target_; }
    // Where to write (a file in the target's folder).
    const std::string& temp() const { return temp_; }
    // Moves the finished file onto the target; IoError naming the target if
    // it cannot (the temporary is removed then too).
    void commit();

private:
    std::string target_, temp_;
    int slot_ = -1;
    bool done_ = false;
};

// `bytes` as the file `path`, through an OutputTarget; IoError naming the
// path and `what` it is ("the pairs CSV") when it cannot be written.
void write_output_file(const std::string& path, const std::string& bytes, const std::string& what);

}  // namespace tessera
