// PIL's Image.resize for 8-bit images (libImaging/Resample.c), reproduced
// operation for operation so that a model sees the pixels its Hugging Face
// processor would give it: per output pixel, filter weights over the source
// span (support scaled by the downscale factor), normalised in double, turned
// into 22-bit fixed point; a horizontal pass then a vertical pass, each
// rounded and clipped to 8 bits. Compiled with -ffp-contract=off: a fused
// multiply-add would change the weights' last bits and so some pixels.
#include <algorithm>
#include <cmath>

#include "sinklab/vision.h"

namespace sinklab {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double support;
  double (*fn)(double);
};

double box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}
double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}
double lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
  return 0.0;
}

Filter filter_of(Resample r) {
  switch (r) {
    case Resample::Box: return {0.5, box};
    case Resample::Bilinear: return {1.0, bilinear};
    case Resample::Hamming: return {1.0, hamming};
    case Resample::Bicubic: return {2.0, bicubic};
    case Resample::Lanczos: return {3.0, lanczos};
  }
  throw Error("image resize: unknown resampling filter " + std::to_string(int(r)));
}

// Fixed-point weights of each output pixel: first source index, count, ksize weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Coeffs precompute(int in_size, int out_size, const Filter& f) {
  const double scale = double(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = f.support * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.k.assign(size_t(out_size) * size_t(c.ksize), 0);
  std::vector<double> w(size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[size_t(x)] = f.fn((x + xmin - center + 0.5) * ss);
      ww += w[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      c.k[size_t(xx) * size_t(c.ksize) + size_t(x)] =
          v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  if (v < 0) return 0;
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  return uint8_t(v >> kPrecisionBits);
}

Image horizontal(const Image& in, int out_w, const Coeffs& c) {
  Image out;
  out.width = out_w, out.height = in.height;
  out.rgb.resize(size_t(out_w) * size_t(in.height) * 3);
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = c.k.data() + size_t(x) * size_t(c.ksize);
      const uint8_t* src = in.rgb.data() + (size_t(y) * size_t(in.width) + size_t(c.first[size_t(x)])) * 3;
      for (int ch = 0; ch < 3; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int i = 0; i < c.count[size_t(x)]; ++i) ss += int32_t(src[size_t(i) * 3 + size_t(ch)]) * k[i];
        out.rgb[(size_t(y) * size_t(out_w) + size_t(x)) * 3 + size_t(ch)] = clip8(ss);
      }
    }
  return out;
}

Image vertical(const Image& in, int out_h, const Coeffs& c) {
  Image out;
  out.width = in.width, out.height = out_h;
  out.rgb.resize(size_t(in.width) * size_t(out_h) * 3);
  const size_t row = size_t(in.width) * 3;
  for (int y = 0; y < out_h; ++y) {
    const int32_t* k = c.k.data() + size_t(y) * size_t(c.ksize);
    for (size_t j = 0; j < row; ++j) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int i = 0; i < c.count[size_t(y)]; ++i)
        ss += int32_t(in.rgb[size_t(c.first[size_t(y)] + i) * row + j]) * k[i];
      out.rgb[size_t(y) * row + j] = clip8(ss);
    }
  }
  return out;
}

}  // namespace

Image resize_image(const Image& in, int width, int height, Resample filter) {
  check(in.width > 0 && in.height > 0 && in.rgb.size() == size_t(in.width) * size_t(in.height) * 3,
        "image resize: the input image is empty or inconsistent");
  check(width > 0 && height > 0 && width <= kMaxImageSide && height <= kMaxImageSide &&
            int64_t(width) * height <= kMaxImagePixels,
        [&] { return "image resize: target size " + std::to_string(width) + "x" + std::to_string(height) + " is out of range"; });
  const Filter f = filter_of(filter);
  Image out = in;
  if (width != in.width) out = horizontal(out, width, precompute(in.width, width, f));
  if (height != in.height) out = vertical(out, height, precompute(in.height, height, f));
  return out;
}

}  // namespace sinklab
