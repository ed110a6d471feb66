// Fuzzes image decoding: the input is an image file (PNG, JPEG, BMP, GIF, ...)
// decoded through stb with sinklab's size and truncation checks, then
// preprocessed as a CLIP processor would (shortest-edge bicubic resize, center
// crop, normalise). Decoding may fail with sinklab::Error; anything else
// (crash, out-of-bounds read, huge allocation) is a bug.
#include <cstddef>
#include <cstdint>

#include "sinklab/vision.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sinklab::Image img = sinklab::decode_image(data, size, "fuzz");
    if (int64_t(img.width) * img.height > 1 << 20) return 0;  // keep each run short
    sinklab::ImagePreprocess p;
    p.shortest_edge = 12;
    p.center_crop = true;
    p.crop_height = p.crop_width = 12;
    (void)sinklab::preprocess_image(img, p);
  } catch (const sinklab::Error&) {
  }
  return 0;
}
