// The chart libraries' minified JavaScript, placed in .rodata by the assembler (CMake passes the
// paths and rebuilds this file when they change), each followed by a NUL.
#include "chart_libraries.h"

#define CCLAB_EMBED(symbol, path) \
  ".global " #symbol "\n" #symbol ":\n.incbin \"" path "\"\n.byte 0\n"

asm(".section .rodata\n"
    CCLAB_EMBED(cclab_vega_js, CCLAB_VEGA_JS)
    CCLAB_EMBED(cclab_vega_lite_js, CCLAB_VEGA_LITE_JS)
    CCLAB_EMBED(cclab_vega_embed_js, CCLAB_VEGA_EMBED_JS)
    ".previous\n");

extern "C" const char cclab_vega_js[], cclab_vega_lite_js[], cclab_vega_embed_js[];

namespace cclab {

std::optional<ChartLibraries> chart_libraries() {
  return ChartLibraries{cclab_vega_js, cclab_vega_lite_js, cclab_vega_embed_js};
}

}  // namespace cclab
