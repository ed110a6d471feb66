// Image files through stb_image (Debian's libstb), with the checks a hostile
// file needs before stb allocates anything: size limits from the header, and
// JPEG truncation (stb pads a cut-off entropy stream with zeros and reports
// success, so a JPEG must end its last scan with an EOI marker).
#include <stb_image.h>
#include <stb_image_write.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "sinklab/vision.h"

namespace sinklab {

namespace {

bool is_jpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

// EOI (FF D9) after the last start-of-scan (FF DA). Inside entropy-coded data
// an FF byte is always followed by 00 or a restart marker, so neither marker
// can appear there by chance.
bool jpeg_has_end(const uint8_t* d, size_t n) {
  size_t last_sos = 0;
  bool found = false;
  for (size_t i = 0; i + 1 < n; ++i)
    if (d[i] == 0xFF && d[i + 1] == 0xDA) last_sos = i, found = true;
  if (!found) return false;
  for (size_t i = last_sos + 2; i + 1 < n; ++i)
    if (d[i] == 0xFF && d[i + 1] == 0xD9) return true;
  return false;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// A PNG's IHDR size, read before stb (which reports an oversized PNG only as
// an unknown image type). False when the file is not a PNG with an IHDR.
bool png_size(const uint8_t* d, size_t n, int64_t& w, int64_t& h) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 24 || std::memcmp(d, sig, 8) != 0 || std::memcmp(d + 12, "IHDR", 4) != 0) return false;
  w = be32(d + 16), h = be32(d + 20);
  return true;
}

void check_size(int64_t w, int64_t h, const std::string& name) {
  check(w > 0 && h > 0, [&] { return name + ": the image has zero size (" + std::to_string(w) + "x" + std::to_string(h) + ")"; });
  check(w <= kMaxImageSide && h <= kMaxImageSide && w * h <= kMaxImagePixels, [&] {
    return name + ": the image is " + std::to_string(w) + "x" + std::to_string(h) + " pixels (at most " +
           std::to_string(kMaxImageSide) + " on a side and " + std::to_string(kMaxImagePixels) + " in all)";
  });
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  check(data != nullptr && size > 0, name + ": the image file is empty");
  check(size <= size_t(1) << 31, name + ": the image file is larger than 2 GiB");
  int64_t pw = 0, ph = 0;
  if (png_size(data, size, pw, ph)) check_size(pw, ph, name);
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, int(size), &w, &h, &comp))
    throw Error(name + ": not a readable image (" + stbi_failure_reason() +
                "; expected PNG, JPEG, BMP, GIF, PNM, TGA, PSD or HDR)");
  check_size(w, h, name);
  check(!is_jpeg(data, size) || jpeg_has_end(data, size),
        name + ": the JPEG file is truncated (no end of image after its last scan)");
  int dw = 0, dh = 0, dc = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_memory(data, int(size), &dw, &dh, &dc, 3),
                                                  stbi_image_free);
  if (!pixels) throw Error(name + ": the image could not be decoded (" + stbi_failure_reason() + ")");
  check(dw == w && dh == h, name + ": the image's header and its decoded size disagree");
  Image img;
  img.width = w, img.height = h;
  img.rgb.assign(pixels.get(), pixels.get() + size_t(w) * size_t(h) * 3);
  return img;
}

std::vector<uint8_t> encode_png(const Image& image) {
  check(image.width > 0 && image.height > 0 && image.rgb.size() == size_t(image.width) * size_t(image.height) * 3,
        "encode_png: the image is empty or inconsistent");
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int n) {
    auto* o = static_cast<std::vector<uint8_t>*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  };
  check(stbi_write_png_to_func(sink, &out, image.width, image.height, 3, image.rgb.data(), image.width * 3) != 0,
        "encode_png: stb could not encode the image");
  return out;
}

Image load_image(const std::string& path) {
  check_regular_file(path, "image");
  check(std::filesystem::file_size(path) <= uintmax_t(1) << 31, path + ": the image file is larger than 2 GiB");
  std::ifstream f(path, std::ios::binary);
  check(f.good(), path + ": cannot open the image file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace sinklab
