// GET /metrics: the server's counters and gauges in Prometheus' text format.
#include <sstream>

#include "serve_internal.h"
#include "sinklab/serve.h"

namespace sinklab::serve {

namespace {

void metric(std::ostringstream& os, const char* name, const char* type, const char* help, double value) {
  os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << value << '\n';
}

}  // namespace

std::string metrics_text(const Metrics& m, const SessionPool& pool, ConversationStore& store,
                         const ServeOptions& options) {
  std::ostringstream os;
  os.precision(10);
  os << "# HELP sinklab_requests_total HTTP requests answered, by route and status.\n"
        "# TYPE sinklab_requests_total counter\n";
  {
    std::lock_guard lock(m.m);
    for (const auto& [key, count] : m.by_status) {
      const size_t space = key.rfind(' ');
      os << "sinklab_requests_total{route=\"" << key.substr(0, space) << "\",status=\"" << key.substr(space + 1)
         << "\"} " << count << '\n';
    }
  }
  const double decode_s = double(m.decode_ns) * 1e-9, prefill_s = double(m.prefill_ns) * 1e-9;
  metric(os, "sinklab_prompt_tokens_total", "counter", "Prompt tokens fed.", double(m.prompt_tokens));
  metric(os, "sinklab_generated_tokens_total", "counter", "Tokens generated.", double(m.generated_tokens));
  metric(os, "sinklab_prefill_seconds_total", "counter", "Seconds spent feeding prompts.", prefill_s);
  metric(os, "sinklab_decode_seconds_total", "counter", "Seconds spent decoding.", decode_s);
  metric(os, "sinklab_prefill_tokens_per_second", "gauge", "Prompt tokens per second of prefill, since start.",
         prefill_s > 0 ? double(m.prompt_tokens) / prefill_s : 0);
  metric(os, "sinklab_decode_tokens_per_second", "gauge", "Generated tokens per second of decoding, since start.",
         decode_s > 0 ? double(m.generated_tokens) / decode_s : 0);
  metric(os, "sinklab_active_requests", "gauge", "Requests generating now.", double(m.active));
  metric(os, "sinklab_queued_requests", "gauge", "Requests waiting for a slot.", double(m.queued));
  metric(os, "sinklab_cancelled_requests_total", "counter", "Requests cancelled (client gone or shutdown).",
         double(m.cancelled));
  metric(os, "sinklab_conversations", "gauge", "Conversations kept (each holds a session).", double(store.size()));
  int64_t in_use = 0;
  size_t allocated = 0;
  {
    std::lock_guard lock(store.pool_mutex());
    in_use = pool.in_use();
    allocated = pool.bytes_allocated();
  }
  metric(os, "sinklab_active_sessions", "gauge", "Sessions in use (conversations and one-off requests).",
         double(in_use));
  metric(os, "sinklab_kv_bytes", "gauge", "KV cache bytes committed by all sessions.", double(allocated));
  metric(os, "sinklab_kv_budget_bytes", "gauge", "The KV budget (--kv-budget).", double(options.kv_budget_bytes));
  metric(os, "sinklab_evicted_tokens_total", "counter", "Tokens evicted from caches by their policy.",
         double(m.evicted_tokens));
  return os.str();
}

}  // namespace sinklab::serve
