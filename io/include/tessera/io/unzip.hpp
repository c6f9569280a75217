// Unpacking a zip archive (a zipped Deep Zoom pyramid, for `tessera view`,
// whose browser page needs the tiles as files). The zip library stays
// inside io/ (zip_writer.cpp).
#pragma once

#include <string>

namespace tessera {

// Every entry of `archive` written under `folder` (which must exist), its
// relative path kept. IoError naming the archive when it is not a zip, an
// entry would land outside `folder` (an absolute name, or '..'), or a file
// cannot be written.
void unzip_to(const std::string& archive, const std::string& folder);

}  // namespace tessera
