#include "tessera/io/output_target.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "temp_beside.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/temporaries.hpp"

namespace tessera {

OutputTarget::OutputTarget(std::string target) : target_(std::move(target)) {
    io::remove_stale_temporaries(target_);
    temp_ = io::temp_beside(target_, ".tmp");
    slot_ = track_temporary(temp_);
}

OutputTarget::~OutputTarget() {
    if (done_) return;
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
    untrack_temporary(slot_);
}

void OutputTarget::commit() {
    std::error_code ec;
    std::filesystem::rename(temp_, target_, ec);
    if (ec) {
        std::filesystem::remove(temp_, ec);
        untrack_temporary(slot_);
        done_ = true;
        throw IoError(target_, "cannot move the finished file into place: " + ec.message() +
                                   "; check the folder is writable");
    }
    untrack_temporary(slot_);
    done_ = true;
}

void write_output_file(const std::string& path, const std::string& bytes, const std::string& what) {
    OutputTarget out(path);
    {
        std::ofstream f(out.temp(), std::ios::binary);
        if (!f) throw IoError(path, "cannot write " + what + "; check that the folder exists and is writable");
        f.write(bytes.data(), std::streamsize(bytes.size()));
        if (!f.flush()) throw IoError(path, "cannot write " + what + "; check the folder and free space");
    }
    out.commit();
}

}  // namespace tessera
