// Text written into the markup tools/ produces (the registration SVG, the
// viewer page): private to the umbrella library.
#pragma once

#include <string>

namespace tessera {

// Text as XML/HTML character data or a quoted attribute value.
inline std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    return out;
}

}  // namespace tessera
