// sinklab.TrainModel: the training decoder's parameters, forward and backward
// on numpy arrays (for gradient checks against an independent implementation).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checked_self.h"
#include "numpy_views.h"
#include "sinklab/attention.h"
#include "sinklab/train.h"

namespace sinklab::python {

namespace {

constexpr const char* kTrainModelDoc = R"doc(
The decoder that `sinklab train` trains, with its parameters as numpy arrays.

TrainModel(config, seed)
  config  the "model" part of a training config as a dict (keys as in a
          train config JSON: vocab (> 0 here), dim, n_layers, n_heads, n_kv_heads,
          hidden, seq_len, norm_eps, rope_theta, rope, variant ('vanilla',
          'sink-token', 'sink-logit', 'goat', 'alibi'), goat_rank, goat_abs_rank,
          goat_u_hidden, goat_base, tied_embeddings, init_std)
  seed    initialisation seed

Parameters have Hugging Face names (model.layers.0.self_attn.q_proj.weight, ...).
An unknown config key, a bad value or an unknown parameter name raises
sinklab.Error; a wrong shape or dtype raises ValueError / TypeError.
)doc";

constexpr const char* kForwardBackwardDoc = R"doc(
Forward and backward over a batch. inputs and targets are integer arrays
[batch, T] of token ids; targets < 0 are not scored. Returns
(loss_sum, n_scored, grads): the sum of the scored tokens' cross-entropy and
grads, a dict name -> float32 array of d(loss_sum * grad_scale)/d param
(gradients start from zero on every call).
)doc";

class PyTrainModel {
 public:
  PyTrainModel(const py::dict& config, uint64_t seed) {
    const std::string model_json = py::module_::import("json").attr("dumps")(config).cast<std::string>();
    const std::string text =
        R"({"model": )" + model_json + R"(, "train": {"train_text": "-", "out_dir": "-"}})";
    const TrainConfig parsed = parse_train_config(text, "TrainModel config");
    model_ = std::make_unique<TrainModel>(parsed.model, seed);
  }

  py::dict config() const {
    TrainConfig c;
    c.model = model_->config();
    const py::object all = py::module_::import("json").attr("loads")(train_config_to_json(c));
    return all["model"].cast<py::dict>();
  }

  py::dict params() const { return to_dict(model_->values()); }

  void set_params(const py::dict& values) {
    // Every entry is checked before any is written.
    KeepAlive keep;
    std::vector<std::pair<const TrainModel::Param*, py::array_t<float>>> checked;
    for (const auto& item : values) {
      const std::string name = py::str(item.first).cast<std::string>();
      const TrainModel::Param& p = model_->param(name);
      checked.emplace_back(&p, float32_array(item.second, name, p.shape, keep));
    }
    for (const auto& [p, a] : checked) std::copy_n(a.data(), p->size, model_->values().data() + p->offset);
  }

  py::tuple forward_backward(py::handle inputs, py::handle targets, double grad_scale) {
    KeepAlive keep;
    const Batch b = batch(inputs, targets, keep);
    int64_t n_scored = 0;
    double loss = 0;
    {
      py::gil_scoped_release unlocked;
      model_->zero_grad();
      loss = model_->forward_backward(b.inputs, b.targets, b.B, b.T, float(grad_scale), &n_scored);
    }
    return py::make_tuple(loss, n_scored, to_dict(model_->grads()));
  }

  py::tuple forward_loss(py::handle inputs, py::handle targets) {
    KeepAlive keep;
    const Batch b = batch(inputs, targets, keep);
    int64_t n_scored = 0;
    double loss = 0;
    {
      py::gil_scoped_release unlocked;
      loss = model_->forward_loss(b.inputs, b.targets, b.B, b.T, &n_scored);
    }
    return py::make_tuple(loss, n_scored);
  }

 private:
  struct Batch {
    const int32_t* inputs;
    const int32_t* targets;
    int64_t B, T;
  };

  static Batch batch(py::handle inputs, py::handle targets, KeepAlive& keep) {
    const py::array_t<int32_t> in = int32_array(inputs, "inputs", keep);
    const py::array_t<int32_t> tg = int32_array(targets, "targets", keep);
    if (in.ndim() != 2) throw py::value_error("inputs must have shape [batch, T], got " + shape_str(in));
    if (tg.ndim() != 2 || tg.shape(0) != in.shape(0) || tg.shape(1) != in.shape(1))
      throw py::value_error("targets must have the shape of inputs " + shape_str(in) + ", got " + shape_str(tg));
    if (in.size() == 0) throw py::value_error("inputs is empty");
    return {in.data(), tg.data(), int64_t(in.shape(0)), int64_t(in.shape(1))};
  }

  py::dict to_dict(std::span<const float> flat) const {
    py::dict out;
    for (const TrainModel::Param& p : model_->params()) {
      py::array_t<float> a(std::vector<ssize_t>(p.shape.begin(), p.shape.end()));
      std::copy_n(flat.data() + p.offset, p.size, a.mutable_data());
      out[py::str(p.name)] = a;
    }
    return out;
  }

  std::unique_ptr<TrainModel> model_;
};

}  // namespace

void register_train(py::module_& m) {
  py::class_<PyTrainModel>(m, "TrainModel", kTrainModelDoc)
      .def(py::init<const py::dict&, uint64_t>(), py::arg("config"), py::arg("seed") = 1)
      .def_property_readonly("config", checked_method("TrainModel", &PyTrainModel::config), "The full model config (defaults filled in).")
      .def("params", checked_method("TrainModel", &PyTrainModel::params), "A copy of every parameter: dict name -> float32 array.")
      .def("set_params", checked_method("TrainModel", &PyTrainModel::set_params), py::arg("values"),
           "Sets the named parameters (a subset is fine) from arrays of their exact shapes.")
      .def("forward_backward", checked_method("TrainModel", &PyTrainModel::forward_backward), kForwardBackwardDoc, py::arg("inputs"),
           py::arg("targets"), py::arg("grad_scale") = 1.0)
      .def("forward_loss", checked_method("TrainModel", &PyTrainModel::forward_loss), py::arg("inputs"), py::arg("targets"),
           "Forward only: (loss_sum, n_scored).");
  m.def(
      "alibi_slopes",
      [](int n_heads) {
        const std::vector<float> s = alibi_slopes(n_heads);
        py::array_t<float> out(ssize_t(s.size()));
        std::copy(s.begin(), s.end(), out.mutable_data());
        return out;
      },
      py::arg("n_heads"), "The standard ALiBi slopes (Press et al.) for n_heads heads, float32.");
}

}  // namespace sinklab::python
