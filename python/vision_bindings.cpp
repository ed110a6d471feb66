// sinklab.VisionModel and sinklab.load_image: vision transformers (HF vit,
// dinov2, clip, siglip) from Python, with the same tap names as Session.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "checked_self.h"
#include "numpy_views.h"
#include "sinklab/vision.h"

namespace sinklab::python {

namespace {

const char* const kVisionDoc = R"doc(A vision transformer (Hugging Face vit, dinov2, dinov2_with_registers,
clip_vision_model / clip, siglip_vision_model) from a safetensors file or folder
with config.json.

  vm = sinklab.VisionModel("path/to/model")
  x = vm.preprocess("cat.png")          # float32 [3, H, W], as the model's processor
  out = vm.forward(x, taps=["blk.*.attn_probs"])
  out["hidden"], out["pooled"], out["taps"]["blk.0.attn_probs"]
)doc";

const char* const kForwardDoc = R"doc(Runs the model on pixels [channels, H, W] (float32 or float64).
taps: tap names or patterns ("blk.*.resid_out"); every tensor whose name
matches is returned in out["taps"][name] (a copy, [rows, cols]).
test_time_registers: zero tokens appended after the patches.
register_neurons: [(layer, neuron), ...]: the test-time register edit (their
activations in blk.L.ffn_act moved onto the appended register, at least one).
Returns {"hidden": [tokens, dim], "pooled": [dim], "embeds": [proj] or None,
"grid": (gh, gw), "n_prefix": int, "taps": {name: array}}.)doc";

class PyVisionModel {
 public:
  explicit PyVisionModel(const std::string& path) : model_(VisionModel::load(resolve_model_source(path))) {}

  py::dict config() const {
    const VisionConfig& c = model_->config();
    py::dict d;
    d["arch"] = vision_arch_name(c.arch);
    d["model_type"] = c.model_type;
    d["dim"] = c.dim, d["layers"] = c.n_layers, d["heads"] = c.n_heads, d["hidden"] = c.hidden;
    d["image_size"] = c.image_size, d["patch_size"] = c.patch_size, d["registers"] = c.n_registers;
    d["cls_token"] = c.cls_token, d["proj_dim"] = c.proj_dim;
    return d;
  }

  py::array_t<float> preprocess(const std::string& image_path) const {
    const PreprocessedImage img =
        preprocess_image(load_image(image_path), load_preprocess(model_->path(), model_->config()));
    py::array_t<float> out({int64_t(3), int64_t(img.height), int64_t(img.width)});
    std::memcpy(out.mutable_data(), img.pixels.data(), img.pixels.size() * sizeof(float));
    return out;
  }

  py::list find_register_neurons(const std::vector<py::object>& images, int detection_layer, double outlier_threshold,
                                 double norm_factor, int highest_layer, int top_k) const {
    KeepAlive keep;
    const VisionConfig& c = model_->config();
    std::vector<PixelImage> views;
    for (size_t i = 0; i < images.size(); ++i) {
      const py::array_t<float> x = float32_array(images[i], "images[" + std::to_string(i) + "]", {c.channels, -1, -1}, keep);
      views.push_back({x.data(), int(x.shape(1)), int(x.shape(2))});
    }
    RegisterNeuronOptions o;
    o.detection_layer = detection_layer, o.outlier_threshold = outlier_threshold, o.norm_factor = norm_factor;
    o.highest_layer = highest_layer, o.top_k = top_k;
    const RegisterNeuronResult r = sinklab::find_register_neurons(*model_, views, o);
    py::list out;
    for (const RegisterNeuron& n : r.neurons) out.append(py::make_tuple(n.layer, n.neuron, n.score));
    return out;
  }

  py::dict forward(py::handle pixels, const std::vector<std::string>& taps, int test_time_registers,
                   const std::vector<std::pair<int, int>>& register_neurons) const {
    KeepAlive keep;
    const VisionConfig& c = model_->config();
    const py::array_t<float> x = float32_array(pixels, "pixels", {c.channels, -1, -1}, keep);
    std::map<std::string, py::array_t<float>> captured;
    Taps t;
    for (const std::string& pattern : taps)
      t.add(pattern, [&captured](const TapEvent& ev) {
        py::array_t<float> a({ev.rows, ev.cols});
        std::memcpy(a.mutable_data(), ev.data, size_t(ev.rows * ev.cols) * sizeof(float));
        captured[ev.name] = a;
      });
    VisionForwardOptions opts;
    opts.taps = &t;
    opts.test_time_registers = test_time_registers;  // range checked by forward
    // The test-time register edit runs before the caller's taps, so they see its result.
    Taps edited;
    if (!register_neurons.empty()) {
      std::vector<RegisterNeuron> chosen;
      for (const auto& [layer, neuron] : register_neurons) chosen.push_back({layer, neuron, 0.0});
      opts.test_time_registers = std::max(test_time_registers, 1);
      add_test_time_register_taps(edited, c, chosen, opts.test_time_registers);
      edited.add("*", [&t](const TapEvent& ev) { t.fire(ev); });
      opts.taps = &edited;
    }
    const VisionOutput out = model_->forward(x.data(), int(x.shape(1)), int(x.shape(2)), opts);
    py::dict d;
    py::array_t<float> hidden({out.tokens, out.dim});
    std::memcpy(hidden.mutable_data(), out.hidden.data(), out.hidden.size() * sizeof(float));
    d["hidden"] = hidden;
    d["pooled"] = py::array_t<float>(py::ssize_t(out.pooled.size()), out.pooled.data());
    d["embeds"] = out.embeds.empty() ? py::object(py::none())
                                     : py::object(py::array_t<float>(py::ssize_t(out.embeds.size()), out.embeds.data()));
    d["grid"] = py::make_tuple(out.grid_h, out.grid_w);
    d["n_prefix"] = out.n_prefix;
    py::dict tapped;
    for (auto& [name, a] : captured) tapped[py::str(name)] = a;
    d["taps"] = tapped;
    return d;
  }

  py::object inspect(py::handle pixels, double norm_threshold, double norm_factor, int test_time_registers) const {
    KeepAlive keep;
    const VisionConfig& c = model_->config();
    const py::array_t<float> x = float32_array(pixels, "pixels", {c.channels, -1, -1}, keep);
    VisionInspectOptions opts;
    opts.norm_threshold = norm_threshold;
    opts.norm_factor = norm_factor;
    opts.forward.test_time_registers = test_time_registers;
    const VisionInspection r = inspect_vision(*model_, x.data(), int(x.shape(1)), int(x.shape(2)), opts);
    return py::module_::import("json").attr("loads")(vision_inspection_json(*model_, r, "<array>").dump());
  }

  std::string repr() const {
    const VisionConfig& c = model_->config();
    return "<sinklab.VisionModel " + c.model_type + " " + std::to_string(c.n_layers) + " layers, dim " +
           std::to_string(c.dim) + ", patch " + std::to_string(c.patch_size) + " from " + model_->path() + ">";
  }

 private:
  std::shared_ptr<const VisionModel> model_;
};

py::array_t<uint8_t> load_image_py(const std::string& path) {
  const Image img = load_image(path);
  py::array_t<uint8_t> out({int64_t(img.height), int64_t(img.width), int64_t(3)});
  std::memcpy(out.mutable_data(), img.rgb.data(), img.rgb.size());
  return out;
}

}  // namespace

void register_vision(py::module_& m) {
  py::class_<PyVisionModel>(m, "VisionModel", kVisionDoc)
      .def(py::init<const std::string&>(), py::arg("path"))
      .def_property_readonly("config", checked_method("VisionModel", &PyVisionModel::config))
      .def("preprocess", checked_method("VisionModel", &PyVisionModel::preprocess),
           "An image file as the model's processor prepares it (preprocessor_config.json beside the model, "
           "else the family's defaults): float32 [3, H, W].",
           py::arg("image"))
      .def("forward", checked_method("VisionModel", &PyVisionModel::forward), kForwardDoc, py::arg("pixels"),
           py::kw_only(), py::arg("taps") = std::vector<std::string>{}, py::arg("test_time_registers") = 0,
           py::arg("register_neurons") = std::vector<std::pair<int, int>>{})
      .def("find_register_neurons", checked_method("VisionModel", &PyVisionModel::find_register_neurons),
           "Register neurons over images (arrays [3, H, W]): outlier tokens at detection_layer (norm above "
           "outlier_threshold, or norm_factor x the median patch norm), neurons of layers 0..highest_layer scored "
           "by mean |ffn_act| over them; returns [(layer, neuron, score)], best first.",
           py::arg("images"), py::kw_only(), py::arg("detection_layer") = -1, py::arg("outlier_threshold") = 0.0,
           py::arg("norm_factor") = 3.0, py::arg("highest_layer") = -1, py::arg("top_k") = 10)
      .def("inspect", checked_method("VisionModel", &PyVisionModel::inspect),
           "Per-layer token norms, high-norm tokens and CLS -> patch attention (the JSON of `sinklab inspect "
           "--image`) as a dict.",
           py::arg("pixels"), py::kw_only(), py::arg("norm_threshold") = 0.0, py::arg("norm_factor") = 3.0,
           py::arg("test_time_registers") = 0)
      .def("__repr__", checked_method("VisionModel", &PyVisionModel::repr));
  m.def("load_image", &load_image_py, "Decodes an image file (PNG, JPEG, BMP, GIF, ...) to uint8 [H, W, 3] RGB.",
        py::arg("path"));
}

}  // namespace sinklab::python
