// The stb_image decoder and PNG writer compiled into the fuzz targets (from the system's
// libstb-dev header), so that the fuzzer sees coverage inside the decoder it feeds.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
