// The HTTP side of `sinklab serve` on cpp-httplib: routes, authentication,
// body limits, JSON errors, server-sent events, and the Server facade.
#include <httplib.h>

#include <filesystem>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "engine.h"
#include "sinklab/serve.h"

namespace sinklab {

namespace serve {
std::string metrics_text(const Metrics& metrics, const SessionPool& pool, ConversationStore& store,
                         const ServeOptions& options);
const std::string& chat_page_html();
}  // namespace serve

using namespace serve;

namespace {

// Text a client sent may hold invalid UTF-8 (echoed in an error message): it
// is written as U+FFFD rather than refused.
std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.body()); }

// Equal length and bytes, in time that depends only on the lengths.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string route_name(const std::string& path) {
  if (path.rfind("/v1/conversations/", 0) == 0) return "/v1/conversations/{id}";
  for (const char* known : {"/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions",
                            "/v1/conversations"})
    if (path == known) return path;
  return "other";
}

// cpp-httplib listens with a backlog of 5 (compiled into Debian's library):
// a burst of clients then waits out TCP's 1 s SYN retry. listen() again on the
// bound socket (found by its port) raises the backlog.
void raise_listen_backlog(int port) {
  for (int fd = 0; fd < 4096; ++fd) {
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    const int bound = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                                  : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
}

std::string sse(const nlohmann::json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

struct Server::Impl {
  std::shared_ptr<const Model> model;
  ServeOptions options;
  std::string model_id;
  std::unique_ptr<ChatFormat> format;
  std::string format_why;
  std::unique_ptr<SessionPool> pool;
  std::unique_ptr<ConversationStore> store;
  Metrics metrics;
  std::unique_ptr<Engine> engine;
  httplib::Server http;
  std::once_flag shutdown_once;

  void routes();
  void generate(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  void stream(httplib::Response& res, const std::shared_ptr<Job>& job);
  nlohmann::json conversation_json(const std::string& id, const CacheView& v) const;
};

Server::Server(std::shared_ptr<const Model> model, ServeOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  check(model != nullptr, "serve: no model");
  check(model->tokenizer() != nullptr, "serve: " + model->path() + " has no tokenizer (give one with --tokenizer)");
  check(options.parallel >= 1 && options.parallel <= 256, "serve: --parallel must be 1..256");
  check(options.queue_limit >= 0, "serve: --queue must be >= 0");
  check(options.prefill_chunk >= 1, "serve: the prefill chunk must be >= 1");
  s.model = std::move(model);
  s.options = std::move(options);
  s.model_id = s.options.model_id;
  if (s.model_id.empty()) {
    std::filesystem::path p(s.model->path());
    s.model_id = (std::filesystem::is_directory(p) ? p.lexically_normal().filename() : p.filename()).string();
    if (s.model_id.empty()) s.model_id = std::filesystem::absolute(p).parent_path().filename().string();
  }
  const Tokenizer& tok = *s.model->tokenizer();
  if (!s.options.chat_format.empty()) {
    s.format = std::make_unique<ChatFormat>(ChatFormat::by_name(s.options.chat_format, tok));
    s.format_why = "--chat-template";
  } else {
    s.format = std::make_unique<ChatFormat>(
        ChatFormat::for_model_or_plain(s.model->config().arch, tok, s.model->config().chat_template, &s.format_why));
  }
  SessionOptions so;
  parse_cache_spec(s.options.cache);  // a bad spec fails here, naming itself
  so.cache = s.options.cache;
  so.context = s.options.context;
  s.pool = std::make_unique<SessionPool>(s.model, so, s.options.kv_budget_bytes);
  s.store = std::make_unique<ConversationStore>(*s.pool, s.options.idle_expiry_s);
  s.engine = std::make_unique<Engine>(s.model, s.options, *s.pool, *s.store, s.metrics, *s.format);
  s.routes();
}

Server::~Server() {
  if (impl_->engine) impl_->engine->shutdown(0);
}

int Server::bind() {
  Impl& s = *impl_;
  int port = s.options.port;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.options.host);
    if (port < 0) throw Error("serve: cannot bind to " + s.options.host + " on any port");
  } else if (!s.http.bind_to_port(s.options.host, port)) {
    throw Error("serve: cannot bind to " + s.options.host + ":" + std::to_string(port) +
                " (in use, or not an address of this machine)");
  }
  raise_listen_backlog(port);
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::shutdown() {
  Impl& s = *impl_;
  std::call_once(s.shutdown_once, [&s] {
    s.engine->shutdown(s.options.shutdown_grace_s);
    s.http.stop();
  });
}

std::string Server::summary() const {
  const Impl& s = *impl_;
  return "model " + s.model_id + " (" + s.model->config().arch + "), cache " + cache_spec_string(s.pool->spec()) +
         " (" + std::to_string((s.pool->bytes_per_session() + (1u << 19)) >> 20) + " MiB KV per conversation, " +
         std::to_string(s.pool->max_sessions()) + " fit the budget), chat format " + s.format->name() + " (from " +
         s.format_why + "), parallel " + std::to_string(s.options.parallel) +
         (s.options.api_key.empty() ? ", no API key" : ", API key required");
}

// ------------------------------------------------------------------- routes --
void Server::Impl::routes() {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_timeout(2);
  const size_t threads = size_t(std::min(256, options.parallel + options.queue_limit + 4));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(std::max<size_t>(threads, 8)); };

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options.api_key.empty() || req.path == "/" || req.path == "/health" || req.path == "/favicon.ico")
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0 && same_secret(auth.substr(7), options.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "missing or wrong API key (send Authorization: Bearer KEY)", "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    // cpp-httplib caps form-encoded bodies (curl's default type) at 8 KiB.
    const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
    if (res.status == 413)
      send_error(res, ApiError(413, "the request body is larger than the server accepts (" +
                                        (form ? std::string("8192 bytes for a form-encoded body: send Content-Type: "
                                                            "application/json")
                                              : "--max-body " + std::to_string(options.max_body_bytes) + " bytes") +
                                        ")"));
    else if (res.status == 404) send_error(res, ApiError(404, "no route " + req.method + " " + req.path));
    else send_error(res, ApiError(res.status, "bad request"));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
    }
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    ++metrics.requests;
    if (res.status >= 400) ++metrics.errors;
    metrics.count(route_name(req.path), res.status);
  });

  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(chat_page_html(), "text/html; charset=utf-8");
  });
  http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(metrics, *pool, *store, options), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const nlohmann::json m = {{"id", model_id},
                              {"object", "model"},
                              {"created", 0},
                              {"owned_by", "sinklab"},
                              {"sinklab",
                               {{"arch", model->config().arch},
                                {"cache", cache_spec_string(pool->spec())},
                                {"chat_format", format->name()},
                                {"context", pool->spec().options.window + pool->spec().options.sink}}}};
    send_json(res, 200, {{"object", "list"}, {"data", nlohmann::json::array({m})}});
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, Endpoint::Completions);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, Endpoint::ChatCompletions);
  });
  http.Post("/v1/conversations", [this](const httplib::Request& req, httplib::Response& res) {
    Endpoint endpoint = Endpoint::ChatCompletions;
    if (!req.body.empty()) {
      const nlohmann::json body = parse_body(req.body);
      const std::string e = body.value("endpoint", "chat");
      if (e == "completions") endpoint = Endpoint::Completions;
      else if (e != "chat") throw ApiError(400, "'endpoint' must be \"chat\" or \"completions\"", "endpoint");
    }
    const std::shared_ptr<Conversation> c = store->create(endpoint);
    store->give_back(c);
    send_json(res, 200, conversation_json(c->id, CacheView{}));
  });
  http.Get(R"(/v1/conversations/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const std::optional<CacheView> v = store->view(id);
    if (!v) throw ApiError(404, "conversation '" + id + "' is unknown or has expired", "conversation_id");
    send_json(res, 200, conversation_json(id, *v));
  });
  http.Delete(R"(/v1/conversations/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!store->remove(id)) throw ApiError(404, "conversation '" + id + "' is unknown or has expired", "conversation_id");
    send_json(res, 200, {{"id", id}, {"object", "conversation.deleted"}, {"deleted", true}});
  });
}

nlohmann::json Server::Impl::conversation_json(const std::string& id, const CacheView& v) const {
  const Tokenizer& tok = *model->tokenizer();
  nlohmann::json sinks = nlohmann::json::array();
  for (int32_t t : v.sink_ids) sinks.push_back({{"id", t}, {"text", token_display_text(tok, t)}});
  const nlohmann::json mass = v.sink_mass >= 0 ? nlohmann::json(v.sink_mass) : nlohmann::json(nullptr);
  nlohmann::json by_layer = nlohmann::json::array();
  for (double m : v.sink_mass_by_layer) by_layer.push_back(m >= 0 ? nlohmann::json(m) : nlohmann::json(nullptr));
  return {{"id", id},
          {"object", "conversation"},
          {"cache", cache_spec_string(pool->spec())},
          {"n_past", v.n_past},
          {"cached_tokens", v.cached},
          {"capacity", v.capacity > 0 ? v.capacity : pool->spec().options.sink + pool->spec().options.window},
          {"evicted_tokens", v.evicted},
          {"sink_tokens", sinks},
          {"recent_text", tok.decode(v.recent_ids, false)},
          {"sink_mass", mass},
          {"sink_mass_by_layer", by_layer}};
}

void Server::Impl::generate(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  ApiRequest r = parse_request(parse_body(req.body), endpoint);
  if (r.conversation_id.empty() && req.has_header("X-Conversation-Id"))
    r.conversation_id = req.get_header_value("X-Conversation-Id");
  auto job = std::make_shared<Job>(std::move(r));
  engine->submit(job);
  if (!job->wait_started()) return send_error(res, job->error());
  const ReplyInfo started = job->info();
  if (!started.conversation_id.empty()) res.set_header("X-Conversation-Id", started.conversation_id);
  if (job->req.stream) return stream(res, job);
  const std::string text = job->all_text();
  send_json(res, 200, reply_json(job->req, model_id, text, job->info()));
}

void Server::Impl::stream(httplib::Response& res, const std::shared_ptr<Job>& job) {
  res.set_header("Cache-Control", "no-cache");
  auto first = std::make_shared<bool>(true);
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, first](size_t, httplib::DataSink& sink) {
        const auto write = [&](const std::string& s) {
          if (!sink.write(s.data(), s.size())) {
            job->cancelled = true;  // the client went away: the scheduler drops the request
            return false;
          }
          return true;
        };
        const ReplyInfo head = job->info();
        if (*first && job->req.endpoint == Endpoint::ChatCompletions) {
          *first = false;
          if (!write(sse(chunk_json(job->req, model_id, head, "", true, false)))) return false;
        }
        *first = false;
        if (const std::optional<std::string> piece = job->next_text())
          return write(sse(chunk_json(job->req, model_id, head, *piece, false, false)));
        const ReplyInfo info = job->info();
        if (!write(sse(chunk_json(job->req, model_id, info, "", false, true)))) return false;
        if (job->req.include_usage && !write(sse(usage_chunk_json(job->req, model_id, info)))) return false;
        if (!write("data: [DONE]\n\n")) return false;
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancelled = true;
      });
}

}  // namespace sinklab
