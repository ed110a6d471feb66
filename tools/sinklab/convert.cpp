// `sinklab convert`: writes a model (safetensors, GGUF or llama2.c) as a GGUF v3
// file with llama.cpp tensor names and metadata, optionally in f16, bf16 or a
// quantised type (q8_0, q6_k, q5_k, q4_k, q4_0).
#include <cstdio>
#include <string>

#include "bench_harness.h"
#include "commands.h"
#include "model_args.h"
#include "output_guard.h"
#include "sinklab/export.h"

namespace sinklab::cli {

namespace {

struct ConvertFlags {
  int threads = 0;
  ModelArgs model;
  std::string output;
  std::string type = "f32";
  OutputGuard guard;
};

}  // namespace

Command convert_command() {
  auto flags = std::make_shared<ConvertFlags>();
  Command cmd;
  cmd.add = [flags](CLI::App& app) {
    CLI::App* sub = app.add_subcommand(
        "convert", "Write a model as a GGUF v3 file (llama.cpp tensor names and metadata keys)");
    add_model_flags(*sub, flags->model, false);
    sub->add_option("-o,--output", flags->output,
                    "GGUF file to write (a new file; an existing one only with --force, never an input)")
        ->required();
    flags->guard.add_force_flag(*sub);
    add_threads_flag(*sub, flags->threads);
    sub->add_option("--type", flags->type,
                    "Element type of the weight matrices: f32, f16, bf16, q8_0, q6_k, q5_k, q4_k, q4_0 or mxfp4 "
                    "(quantised like llama.cpp's reference quantisers, without an importance matrix; norms, "
                    "biases, sink logits and routers stay f32, and so does a matrix whose rows are not a "
                    "multiple of the block: 32 elements for q8_0, q4_0 and mxfp4, 256 for the k types)")
        ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "mxfp4"}, CLI::ignore_case));
    return sub;
  };
  cmd.run = [flags]() {
    bench::set_threads(flags->threads);
    GgufExportOptions opts;
    opts.type = gguf_export_type_from_name(flags->type);
    flags->guard.input(resolve_model_path(flags->model.model_path));
    flags->guard.input(flags->model.tokenizer_path);
    flags->guard.check_file(flags->output, "-o/--output");
    const auto model = load_model(flags->model);
    const GgufExportSummary s = export_gguf(*model, flags->output, opts);
    std::printf("wrote %s: architecture %s, %lld tensors (%lld %s, %lld f32)%s\n", flags->output.c_str(),
                s.gguf_arch.c_str(), static_cast<long long>(s.n_tensors), static_cast<long long>(s.n_converted),
                tensor_type_name(opts.type), static_cast<long long>(s.n_kept_f32),
                s.permuted_qk ? ", q/k rows permuted for interleaved RoPE" : "");
    return 0;
  };
  return cmd;
}

}  // namespace sinklab::cli
