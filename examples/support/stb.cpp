// The one translation unit that compiles the stb single-file libraries (Debian libstb-dev
// headers) used by image.cpp. Compiling the implementations here, rather than linking
// Debian's libstb.so, keeps the support library buildable wherever only the headers exist.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_PNM
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image_resize.h>
