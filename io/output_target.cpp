#include "tessera/io/output_target.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "gdal_common.hpp"
#include "temp_beside.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/stop.hpp"
#include "tessera/core/temporaries.hpp"

namespace tessera {

namespace fs = std::filesystem;

OutputTarget::OutputTarget(std::string target, Kind kind, std::string_view extension)
    : target_(std::move(target)), kind_(kind) {
    io::remove_stale_temporaries(target_);
    temp_ = io::temp_beside(target_, ".tmp" + std::string(extension));
    if (kind_ == Kind::file) {
        slot_ = track_temporary(temp_);
        return;
    }
    std::error_code ec;
    if (!fs::create_directory(temp_, ec) || ec) {
        done_ = true;  // nothing of ours to remove
        throw IoError(target_, "cannot create a temporary folder beside it (" + ec.message() +
                                   "); check that the folder is writable");
    }
}

OutputTarget::~OutputTarget() {
    if (!done_) discard();
}

void OutputTarget::discard() noexcept {
    std::error_code ec;
    if (kind_ == Kind::file) {
        fs::remove(temp_, ec);
        untrack_temporary(slot_);
    } else {
        // renamed first, so that another rank still writing into it (a
        // sharded Deep Zoom run) cannot add files while it is removed
        fs::path doomed = temp_ + ".gone";
        fs::rename(temp_, doomed, ec);
        if (ec) doomed = temp_;
        fs::remove_all(doomed, ec);
        if (ec) fs::remove_all(doomed, ec);  // once more, for a file that came in meanwhile
    }
    done_ = true;
}

void OutputTarget::commit() {
    // A run cancelled while its sink finished (a long encode) puts nothing
    // in place; nor does one cancelled during the copy, which checks
    // between its chunks (core/stop.hpp).
    try {
        throw_if_stopped();
    } catch (...) {
        discard();
        throw;
    }
    if (io::is_vsi_path(target_)) {  // a GDAL target: copied in, then the local file goes
        try {
            io::copy_to_vsi(temp_, target_, throw_if_stopped);
        } catch (...) {
            discard();
            throw;
        }
        discard();
        return;
    }
    std::error_code ec;
    fs::rename(temp_, target_, ec);
    if (ec) {
        discard();
        throw IoError(target_,
                      "cannot move the finished file into place: " + ec.message() + "; check the folder is writable");
    }
    untrack_temporary(slot_);
    done_ = true;
}

void OutputTarget::commit(const std::vector<std::string>& entries) {
    throw_if_stopped();  // before any entry moves (the destructor removes temp())
    const fs::path target(target_), temp(temp_);
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::error_code ec;
    for (const std::string& e : entries) {
        const fs::path final_path = dir / e, old = temp / (".old-" + e);
        const bool had_old = fs::symlink_status(final_path, ec).type() != fs::file_type::not_found && !ec;
        if (had_old) {
            fs::rename(final_path, old, ec);
            if (ec)
                throw IoError(target_, "cannot move the old '" + final_path.string() + "' aside (" + ec.message() +
                                           "); check the folder's permissions");
        }
        fs::rename(temp / e, final_path, ec);
        if (ec) {
            std::error_code ec2;
            if (had_old) fs::rename(old, final_path, ec2);
            throw IoError(target_, "cannot move the finished '" + e + "' into place (" + ec.message() + ")");
        }
    }
    fs::remove_all(temp, ec);  // with the old entries
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
