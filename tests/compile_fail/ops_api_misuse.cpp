// Misuses of the typed builders (tessera/ops_api.hpp) that must not compile:
// tests/CMakeLists.txt compiles this file once as it is (the control: it
// must compile, so a failure below is the misuse's, not the file's) and
// once with each TESSERA_MISUSE_* defined (each must fail, naming it).
#include <tessera/ops_api.hpp>

int main() {
#if defined(TESSERA_MISUSE_WRONG_TYPE)
    const tessera::Image a = tessera::load(42);  // an int where the path, a string, is wanted
#elif defined(TESSERA_MISUSE_MISSPELT_OPTION)
    const tessera::Image a = tessera::black(10, 10, {.band = 3});  // black's option is "bands"
#elif defined(TESSERA_MISUSE_OPTION_TYPE)
    const tessera::Image a = tessera::black(10, 10, {.bands = "3"});  // a string where an integer is wanted
#elif defined(TESSERA_MISUSE_CHOICE)
    const tessera::Image a = tessera::cast(tessera::black(10, 10), "u16");  // choices are an enum, not a string
#else
    const tessera::Image a = tessera::cast(tessera::black(10, 10, {.bands = 3}), tessera::op::CastFormat::u16);
#endif
    return a.bands() == 3 ? 0 : 1;
}
