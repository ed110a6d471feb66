// Propagation through the layers (the GNN lens): attention rollout onto the
// last token, rank collapse of the residual stream and Dirichlet energy.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "sinklab/probe.h"

namespace sinklab {

using namespace probe_detail;

namespace {

// Eigenvalues of a symmetric m x m matrix (row-major, destroyed) by cyclic Jacobi rotations.
std::vector<double> symmetric_eigenvalues(std::vector<double>& a, int64_t m) {
  auto at = [&](int64_t r, int64_t c) -> double& { return a[size_t(r * m + c)]; };
  double total = 0;
  for (double x : a) total += x * x;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < m; ++p)
      for (int64_t q = p + 1; q < m; ++q) off += 2 * at(p, q) * at(p, q);
    if (off <= 1e-28 * total || off == 0) break;
    for (int64_t p = 0; p < m; ++p)
      for (int64_t q = p + 1; q < m; ++q) {
        const double apq = at(p, q);
        if (std::fabs(apq) <= 1e-300) continue;
        const double theta = (at(q, q) - at(p, p)) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < m; ++k) {
          const double x = at(k, p), y = at(k, q);
          at(k, p) = c * x - s * y;
          at(k, q) = s * x + c * y;
        }
        for (int64_t k = 0; k < m; ++k) {
          const double x = at(p, k), y = at(q, k);
          at(p, k) = c * x - s * y;
          at(q, k) = s * x + c * y;
        }
        at(p, q) = at(q, p) = 0;
      }
  }
  std::vector<double> eig(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) eig[size_t(i)] = at(i, i);
  return eig;
}

}  // namespace

RankMeasures rank_measures(const float* x, int64_t rows, int64_t cols) {
  check(x != nullptr && rows > 0 && cols > 0, "rank_measures: need a non-empty matrix");
  RankMeasures r;
  std::vector<double> mean(static_cast<size_t>(cols), 0.0);
  double norm_sq = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t d = 0; d < cols; ++d) {
      const double v = x[i * cols + d];
      mean[size_t(d)] += v / double(rows);
      norm_sq += v * v;
    }
  double centered_sq = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t d = 0; d < cols; ++d) {
      const double v = x[i * cols + d] - mean[size_t(d)];
      centered_sq += v * v;
    }
  r.centered_ratio = norm_sq > 0 ? std::sqrt(centered_sq / norm_sq) : 0.0;
  // Singular values from the Gram matrix of the smaller side.
  const bool by_rows = rows <= cols;
  const int64_t m = by_rows ? rows : cols;
  std::vector<double> gram(static_cast<size_t>(m * m), 0.0);
  for (int64_t a = 0; a < m; ++a)
    for (int64_t b = a; b < m; ++b) {
      double sum = 0;
      if (by_rows) {
        for (int64_t d = 0; d < cols; ++d) sum += double(x[a * cols + d]) * x[b * cols + d];
      } else {
        for (int64_t i = 0; i < rows; ++i) sum += double(x[i * cols + a]) * x[i * cols + b];
      }
      gram[size_t(a * m + b)] = gram[size_t(b * m + a)] = sum;
    }
  std::vector<double> eig = symmetric_eigenvalues(gram, m);
  std::sort(eig.begin(), eig.end(), std::greater<double>());
  double sigma_sum = 0;
  for (double e : eig) {
    r.singular_values.push_back(std::sqrt(std::max(e, 0.0)));
    sigma_sum += r.singular_values.back();
  }
  if (sigma_sum > 0) {
    double entropy = 0;
    for (double s : r.singular_values) {
      const double p = s / sigma_sum;
      if (p > 0) entropy -= p * std::log(p);
    }
    r.effective_rank = std::exp(entropy);
  }
  return r;
}

Propagation propagation(Session& session, std::span<const int32_t> ids, const PropagationOptions& opts) {
  check_ids(ids, "propagation");
  const ModelConfig& c = session.model().config();
  const int64_t n = int64_t(ids.size()), H = c.n_heads, L = c.n_layers;
  check_attention_capture_fits(c, n, L, "propagation");  // every layer's averaged matrix is kept
  Propagation out;
  out.n_tokens = n;
  // Head-averaged attention of every layer [L, n, n].
  std::vector<double> avg(size_t(L * n * n), 0.0);
  std::vector<std::string> names;
  std::vector<bool> fired(size_t(2 * L), false);
  TapGuard guard(session);
  for (int l = 0; l < int(L); ++l) {
    names.push_back(layer_tap(l, "attn_probs"));
    guard.add(names.back(), [&, l](const TapEvent& e) {
      check(e.rows == H * n && e.cols == n, "propagation: tap '" + e.name + "' has an unexpected shape");
      double* A = avg.data() + size_t(l) * size_t(n * n);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < n * n; ++i) A[i] += double(e.data[h * n * n + i]) / double(H);
      fired[size_t(2 * l)] = true;
    });
    names.push_back(layer_tap(l, "resid_out"));
    guard.add(names.back(), [&, l](const TapEvent& e) {
      check(fired[size_t(2 * l)], "propagation: '" + e.name + "' fired before the layer's attention");
      check(e.rows == n, "propagation: tap '" + e.name + "' has an unexpected shape");
      const double* A = avg.data() + size_t(l) * size_t(n * n);
      RankMeasures rm = rank_measures(e.data, e.rows, e.cols);
      PropagationLayer p;
      p.layer = l;
      p.centered_ratio = rm.centered_ratio;
      p.effective_rank = rm.effective_rank;
      p.singular_values = std::move(rm.singular_values);
      double energy = 0, norm_sq = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float* xi = e.data + i * e.cols;
        for (int64_t d = 0; d < e.cols; ++d) norm_sq += double(xi[d]) * xi[d];
        for (int64_t j = 0; j < n; ++j) {
          const double a = A[i * n + j];
          if (a == 0 || i == j) continue;
          const float* xj = e.data + j * e.cols;
          double dist = 0;
          for (int64_t d = 0; d < e.cols; ++d) {
            const double diff = double(xi[d]) - xj[d];
            dist += diff * diff;
          }
          energy += a * dist;
        }
      }
      p.dirichlet_energy = energy;
      p.dirichlet_energy_normalized = norm_sq > 0 ? energy / norm_sq : 0.0;
      out.layers.push_back(std::move(p));
      fired[size_t(2 * l + 1)] = true;
    });
  }
  session.reset();
  session.feed(ids);
  check_fired(names, fired, "propagation");
  // r = e_last^T M_{L-1} ... M_0, with M_l = A_l / 2 + I / 2.
  std::vector<double> r(static_cast<size_t>(n), 0.0), next(static_cast<size_t>(n), 0.0);
  r[size_t(n - 1)] = 1.0;
  for (int64_t l = L - 1; l >= 0; --l) {
    const double* A = avg.data() + size_t(l) * size_t(n * n);
    for (int64_t j = 0; j < n; ++j) next[size_t(j)] = 0.5 * r[size_t(j)];
    for (int64_t i = 0; i < n; ++i) {
      if (r[size_t(i)] == 0) continue;
      for (int64_t j = 0; j < n; ++j) next[size_t(j)] += 0.5 * r[size_t(i)] * A[i * n + j];
    }
    r.swap(next);
  }
  out.influence_on_last = std::move(r);
  if (opts.keep_attention) out.attention = std::move(avg);
  return out;
}

Propagation propagation(const std::shared_ptr<const Model>& model, std::span<const int32_t> ids,
                        const PropagationOptions& opts) {
  auto session = session_for(model, int64_t(ids.size()), "propagation");
  return propagation(*session, ids, opts);
}

}  // namespace sinklab
