// CLIP's ModifiedResNet image tower (OpenAI / OpenCLIP tensor names) and the
// neuron x head decomposition of its attention-pooled embedding.
#include <cblas.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "sinklab/formats.h"
#include "sinklab/vision.h"

namespace sinklab {

namespace {

struct Conv {
  std::vector<float> w;  // [out, in, k, k]
  int out = 0, in = 0, k = 1;
};
struct BatchNorm {
  std::vector<float> scale, shift;  // folded: y = x * scale + shift
};
struct Bottleneck {
  Conv c1, c2, c3, down;
  BatchNorm b1, b2, b3, bd;
  int stride = 1;
  bool has_down = false;
};
struct Linear {
  std::vector<float> w, b;  // [out, in], [out]
  int out = 0, in = 0;
};

// Feature maps [channels, height, width].
struct Map {
  int c = 0, h = 0, w = 0;
  std::vector<float> v;
};

Map conv(const Conv& cv, const Map& x, int stride, int pad) {
  const int oh = (x.h + 2 * pad - cv.k) / stride + 1, ow = (x.w + 2 * pad - cv.k) / stride + 1;
  const int64_t K = int64_t(cv.in) * cv.k * cv.k, N = int64_t(oh) * ow;
  std::vector<float> cols(size_t(K * N), 0.f);
  for (int c = 0; c < cv.in; ++c)
    for (int i = 0; i < cv.k; ++i)
      for (int j = 0; j < cv.k; ++j) {
        float* row = cols.data() + ((int64_t(c) * cv.k + i) * cv.k + j) * N;
        for (int y = 0; y < oh; ++y)
          for (int xx = 0; xx < ow; ++xx) {
            const int sy = y * stride + i - pad, sx = xx * stride + j - pad;
            if (sy >= 0 && sy < x.h && sx >= 0 && sx < x.w) row[y * ow + xx] = x.v[(size_t(c) * x.h + sy) * x.w + sx];
          }
      }
  Map out{cv.out, oh, ow, std::vector<float>(size_t(cv.out) * size_t(N))};
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cv.out, int(N), int(K), 1.f, cv.w.data(), int(K), cols.data(),
              int(N), 0.f, out.v.data(), int(N));
  return out;
}

void bn(const BatchNorm& b, Map& x, bool relu) {
  const size_t plane = size_t(x.h) * x.w;
  for (int c = 0; c < x.c; ++c)
    for (size_t i = 0; i < plane; ++i) {
      float& v = x.v[size_t(c) * plane + i];
      v = v * b.scale[size_t(c)] + b.shift[size_t(c)];
      if (relu) v = std::max(v, 0.f);
    }
}

Map avgpool(const Map& x, int s) {
  if (s == 1) return x;
  Map out{x.c, x.h / s, x.w / s, {}};
  out.v.assign(size_t(out.c) * out.h * out.w, 0.f);
  for (int c = 0; c < x.c; ++c)
    for (int y = 0; y < out.h; ++y)
      for (int xx = 0; xx < out.w; ++xx) {
        float sum = 0.f;
        for (int i = 0; i < s; ++i)
          for (int j = 0; j < s; ++j) sum += x.v[(size_t(c) * x.h + y * s + i) * x.w + xx * s + j];
        out.v[(size_t(c) * out.h + y) * out.w + xx] = sum / float(s * s);
      }
  return out;
}

class Reader {
 public:
  Reader(const TensorFile& f, std::string prefix) : f_(f), prefix_(std::move(prefix)) {}
  std::vector<float> get(const std::string& name, int64_t numel) const {
    const std::string full = prefix_ + name;
    check(f_.contains(full), [&] { return f_.path() + ": tensor '" + full + "' is missing"; });
    const TensorEntry& t = f_.tensor(full);
    check(t.numel() == numel && !tensor_type_is_quantized(t.type) && t.type != TensorType::U8, [&] {
      return f_.path() + ": tensor '" + full + "' has " + std::to_string(t.numel()) + " elements, expected " +
             std::to_string(numel) + " float values";
    });
    std::vector<float> v(static_cast<size_t>(numel));
    dequantize(t, v.data());
    return v;
  }
  Conv conv(const std::string& name, int out, int in, int k) const {
    return {get(name + ".weight", int64_t(out) * in * k * k), out, in, k};
  }
  BatchNorm bn(const std::string& name, int c) const {
    const std::vector<float> w = get(name + ".weight", c), b = get(name + ".bias", c);
    const std::vector<float> mean = get(name + ".running_mean", c), var = get(name + ".running_var", c);
    BatchNorm n;
    for (int i = 0; i < c; ++i) {
      n.scale.push_back(w[size_t(i)] / std::sqrt(var[size_t(i)] + 1e-5f));
      n.shift.push_back(b[size_t(i)] - mean[size_t(i)] * n.scale.back());
    }
    return n;
  }
  Linear linear(const std::string& name, int out, int in) const {
    return {get(name + ".weight", int64_t(out) * in), get(name + ".bias", out), out, in};
  }

 private:
  const TensorFile& f_;
  std::string prefix_;
};

ClipResNetConfig parse_config(const nlohmann::json& j, const std::string& src) {
  check(j.is_object() && j.value("model_type", std::string()) == "clip_resnet",
        src + ": expected model_type \"clip_resnet\"");
  ClipResNetConfig c;
  auto integer = [&](const char* key, int fallback) {
    if (!j.contains(key)) return fallback;
    check(j[key].is_number_integer() && j[key].get<int64_t>() > 0 && j[key].get<int64_t>() <= 65536,
          src + ": " + key + " should be a positive integer");
    return int(j[key].get<int64_t>());
  };
  check(j.contains("layers") && j["layers"].is_array() && j["layers"].size() == 4,
        src + ": layers should be a list of 4 block counts");
  for (const auto& n : j["layers"]) {
    check(n.is_number_integer() && n.get<int64_t>() >= 1 && n.get<int64_t>() <= 256, src + ": layers should hold counts in 1..256");
    c.layers.push_back(int(n.get<int64_t>()));
  }
  c.width = integer("width", 64);
  c.embed_dim = integer("embed_dim", 1024);
  c.image_size = integer("image_size", 224);
  c.heads = integer("heads", c.width * 32 / 64);
  check(c.width % 2 == 0 && c.feature_dim() % c.heads == 0, src + ": width * 32 should be a multiple of heads, width even");
  check(c.image_size % 32 == 0, src + ": image_size should be a multiple of 32");
  return c;
}

}  // namespace

struct ClipResNetWeights {
  Conv c1, c2, c3;
  BatchNorm b1, b2, b3;
  std::vector<Bottleneck> blocks;
  std::vector<float> pos;  // [grid^2 + 1, feature_dim]
  Linear q, k, v, c;
};

ClipResNet::ClipResNet(ClipResNetConfig config, std::unique_ptr<ClipResNetWeights> weights)
    : config_(std::move(config)), weights_(std::move(weights)) {}
ClipResNet::~ClipResNet() = default;

std::shared_ptr<const ClipResNet> ClipResNet::load(const std::string& path) {
  const TensorFile f = load_safetensors(path);
  check(f.has_config(), path + ": no config.json beside the safetensors file");
  const ClipResNetConfig c = parse_config(f.config(), path + "/config.json");
  const Reader r(f, f.contains("visual.conv1.weight") ? "visual." : "");
  auto w = std::make_unique<ClipResNetWeights>();
  const int W = c.width;
  w->c1 = r.conv("conv1", W / 2, 3, 3), w->b1 = r.bn("bn1", W / 2);
  w->c2 = r.conv("conv2", W / 2, W / 2, 3), w->b2 = r.bn("bn2", W / 2);
  w->c3 = r.conv("conv3", W, W / 2, 3), w->b3 = r.bn("bn3", W);
  int inplanes = W;
  for (int stage = 0; stage < 4; ++stage) {
    const int planes = W << stage;
    for (int i = 0; i < c.layers[size_t(stage)]; ++i) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(i) + ".";
      Bottleneck b;
      b.stride = (i == 0 && stage > 0) ? 2 : 1;
      b.c1 = r.conv(p + "conv1", planes, inplanes, 1), b.b1 = r.bn(p + "bn1", planes);
      b.c2 = r.conv(p + "conv2", planes, planes, 3), b.b2 = r.bn(p + "bn2", planes);
      b.c3 = r.conv(p + "conv3", planes * 4, planes, 1), b.b3 = r.bn(p + "bn3", planes * 4);
      b.has_down = b.stride > 1 || inplanes != planes * 4;
      if (b.has_down) b.down = r.conv(p + "downsample.0", planes * 4, inplanes, 1), b.bd = r.bn(p + "downsample.1", planes * 4);
      w->blocks.push_back(std::move(b));
      inplanes = planes * 4;
    }
  }
  const int D = c.feature_dim(), G = c.grid();
  w->pos = r.get("attnpool.positional_embedding", int64_t(G * G + 1) * D);
  w->q = r.linear("attnpool.q_proj", D, D), w->k = r.linear("attnpool.k_proj", D, D);
  w->v = r.linear("attnpool.v_proj", D, D), w->c = r.linear("attnpool.c_proj", c.embed_dim, D);
  return std::make_shared<const ClipResNet>(c, std::move(w));
}

namespace {

std::vector<float> apply(const Linear& l, const float* x, int64_t n) {
  std::vector<float> y(size_t(n) * size_t(l.out));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), l.out, l.in, 1.f, x, l.in, l.w.data(), l.in, 0.f, y.data(), l.out);
  for (int64_t i = 0; i < n; ++i)
    for (int o = 0; o < l.out; ++o) y[size_t(i) * size_t(l.out) + size_t(o)] += l.b[size_t(o)];
  return y;
}

Map bottleneck(const Bottleneck& b, const Map& x) {
  Map out = conv(b.c1, x, 1, 0);
  bn(b.b1, out, true);
  out = conv(b.c2, out, 1, 1);
  bn(b.b2, out, true);
  out = conv(b.c3, avgpool(out, b.stride), 1, 0);
  bn(b.b3, out, false);
  Map id = x;
  if (b.has_down) {
    id = conv(b.down, avgpool(x, b.stride), 1, 0);
    bn(b.bd, id, false);
  }
  for (size_t i = 0; i < out.v.size(); ++i) out.v[i] = std::max(out.v[i] + id.v[i], 0.f);
  return out;
}

}  // namespace

ClipResNetOutput ClipResNet::forward(const float* pixels, int height, int width) const {
  const ClipResNetConfig& c = config_;
  check(pixels && height == c.image_size && width == c.image_size, [&] {
    return "clip_resnet: the image should be " + std::to_string(c.image_size) + "x" + std::to_string(c.image_size) +
           " pixels (got " + std::to_string(height) + "x" + std::to_string(width) + ")";
  });
  const ClipResNetWeights& w = *weights_;
  Map x{3, height, width, std::vector<float>(pixels, pixels + size_t(3) * size_t(height) * size_t(width))};
  x = conv(w.c1, x, 2, 1);
  bn(w.b1, x, true);
  x = conv(w.c2, x, 1, 1);
  bn(w.b2, x, true);
  x = conv(w.c3, x, 1, 1);
  bn(w.b3, x, true);
  x = avgpool(x, 2);
  for (const Bottleneck& b : w.blocks) x = bottleneck(b, x);
  ClipResNetOutput out;
  out.grid_h = x.h, out.grid_w = x.w;
  const int64_t n = int64_t(x.h) * x.w, D = x.c, T = n + 1, H = c.heads, hd = D / H;
  out.features.resize(size_t(n * D));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < D; ++d) out.features[size_t(t * D + d)] = x.v[size_t(d * n + t)];
  // Tokens: the mean feature, then the features; plus position embeddings.
  std::vector<float> tok(size_t(T * D), 0.f);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < D; ++d) {
      tok[size_t((t + 1) * D + d)] = out.features[size_t(t * D + d)];
      tok[size_t(d)] += out.features[size_t(t * D + d)] / float(n);
    }
  for (size_t i = 0; i < tok.size(); ++i) tok[i] += w.pos[i];
  const std::vector<float> q = apply(w.q, tok.data(), 1), k = apply(w.k, tok.data(), T), v = apply(w.v, tok.data(), T);
  std::vector<float> ctx(size_t(D), 0.f);
  out.attn.assign(size_t(H * T), 0.f);
  for (int64_t h = 0; h < H; ++h) {
    std::vector<double> s(static_cast<size_t>(T));
    double top = -1e300, sum = 0;
    for (int64_t j = 0; j < T; ++j) {
      double dot = 0;
      for (int64_t e = 0; e < hd; ++e) dot += double(q[size_t(h * hd + e)]) * k[size_t(j * D + h * hd + e)];
      s[size_t(j)] = dot / std::sqrt(double(hd));
      top = std::max(top, s[size_t(j)]);
    }
    for (double& z : s) sum += (z = std::exp(z - top));
    for (int64_t j = 0; j < T; ++j) {
      out.attn[size_t(h * T + j)] = float(s[size_t(j)] / sum);
      for (int64_t e = 0; e < hd; ++e) ctx[size_t(h * hd + e)] += out.attn[size_t(h * T + j)] * v[size_t(j * D + h * hd + e)];
    }
  }
  out.pooled = apply(w.c, ctx.data(), 1);
  return out;
}

std::vector<double> ClipResNet::pair_contribution(const AttnPoolDecomposition& d, int neuron, int head) const {
  const ClipResNetWeights& w = *weights_;
  const int D = config_.feature_dim(), hd = D / config_.heads, E = config_.embed_dim;
  check(neuron >= 0 && neuron < D && head >= 0 && head < config_.heads, "clip_resnet: neuron or head out of range");
  const double s = d.head_neuron_inputs[size_t(head) * size_t(D) + size_t(neuron)];
  std::vector<double> out(static_cast<size_t>(E), 0.0);
  for (int e = 0; e < E; ++e) {
    double acc = 0;
    for (int i = 0; i < hd; ++i)
      acc += double(w.c.w[size_t(e) * size_t(D) + size_t(head * hd + i)]) * w.v.w[size_t(head * hd + i) * size_t(D) + size_t(neuron)];
    out[size_t(e)] = acc * s;
  }
  return out;
}

AttnPoolDecomposition ClipResNet::decompose(const ClipResNetOutput& out, int top_k) const {
  const ClipResNetWeights& w = *weights_;
  const int64_t D = config_.feature_dim(), H = config_.heads, hd = D / H, E = config_.embed_dim;
  const int64_t n = int64_t(out.grid_h) * out.grid_w, T = n + 1;
  AttnPoolDecomposition d;
  d.neuron_head_sum.assign(size_t(E), 0.0);
  d.position_term.assign(size_t(E), 0.0);
  d.value_bias_term.assign(size_t(E), 0.0);
  d.output_bias.assign(w.c.b.begin(), w.c.b.end());
  d.head_neuron_inputs.assign(size_t(H * D), 0.0);
  double pooled_sq = 0;
  for (float p : out.pooled) pooled_sq += double(p) * p;
  std::vector<NeuronHeadPair> pairs;
  for (int64_t h = 0; h < H; ++h) {
    const float* a = out.attn.data() + h * T;
    // s_n = sum_j a_j f_jn (token 0 is the mean feature); p_n = sum_j a_j pos_jn.
    std::vector<double> s(static_cast<size_t>(D), 0.0), p(static_cast<size_t>(D), 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t m = 0; m < D; ++m) s[size_t(m)] += (double(a[0]) / double(n) + a[t + 1]) * out.features[size_t(t * D + m)];
    for (int64_t j = 0; j < T; ++j)
      for (int64_t m = 0; m < D; ++m) p[size_t(m)] += double(a[j]) * w.pos[size_t(j * D + m)];
    std::copy(s.begin(), s.end(), d.head_neuron_inputs.begin() + h * D);
    // M_h = C_h W_h [E, D], in double.
    std::vector<double> M(size_t(E * D), 0.0);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t i = 0; i < hd; ++i) {
        const double cw = w.c.w[size_t(e * D + h * hd + i)];
        const float* vrow = w.v.w.data() + (h * hd + i) * D;
        double* mrow = M.data() + e * D;
        for (int64_t m = 0; m < D; ++m) mrow[m] += cw * vrow[m];
        d.value_bias_term[size_t(e)] += cw * w.v.b[size_t(h * hd + i)];
      }
    for (int64_t m = 0; m < D; ++m) {
      double sq = 0, dot = 0;
      for (int64_t e = 0; e < E; ++e) {
        const double c = M[size_t(e * D + m)] * s[size_t(m)];
        d.neuron_head_sum[size_t(e)] += c;
        d.position_term[size_t(e)] += M[size_t(e * D + m)] * p[size_t(m)];
        sq += c * c;
        dot += c * out.pooled[size_t(e)];
      }
      pairs.push_back({int(m), int(h), std::sqrt(sq), pooled_sq > 0 ? dot / pooled_sq : 0.0});
    }
  }
  const size_t k = std::min(pairs.size(), size_t(std::max(top_k, 0)));
  std::partial_sort(pairs.begin(), pairs.begin() + std::ptrdiff_t(k), pairs.end(),
                    [](const NeuronHeadPair& x, const NeuronHeadPair& y) { return x.norm > y.norm; });
  d.top.assign(pairs.begin(), pairs.begin() + std::ptrdiff_t(k));
  return d;
}

}  // namespace sinklab
