#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <vips/vips8>

int main(int argc, char** argv) {
    if (VIPS_INIT(argv[0])) return 1;
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
