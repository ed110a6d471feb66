#include "model_args.h"

#include "input_files.h"

#include <filesystem>

namespace sinklab::cli {

namespace fs = std::filesystem;

void add_model_flags(CLI::App& app, ModelArgs& args, bool with_dtype) {
  app.add_option("-m,--model", args.model_path,
                 "Model: a llama2.c checkpoint, a GGUF file, or a safetensors file or folder with "
                 "config.json (default: models/default/ in the source tree, when present)");
  app.add_option("--tokenizer", args.tokenizer_path,
                 "Tokenizer file (tokenizer.json or llama2.c tokenizer.bin); default: the one beside "
                 "the model");
  app.add_flag("--no-mmap", args.no_mmap,
               "Copy the weights into process memory instead of reading them from the memory-mapped "
               "file (slower load; the OS cannot drop and re-read them under memory pressure; rows "
               "64-byte aligned on transparent huge pages where the OS grants them, which decode "
               "reads faster)");
  if (with_dtype)
    app.add_option("--dtype", args.dtype,
                   "Weight matrices in memory: native keeps each in its stored type (f32, bf16, f16 or a "
                   "quantized GGUF type, computed without dequantising; memory ~ the file), f32 or bf16 "
                   "converts the others to that type at load (default native)")
        ->check(CLI::IsMember({"native", "f32", "bf16"}));
}

std::string resolve_model_path(const std::string& given) {
  if (!given.empty()) return resolve_model_source(given);
#ifdef SINKLAB_SOURCE_DIR
  const fs::path fallback = fs::path(SINKLAB_SOURCE_DIR) / "models" / "default";
  std::error_code ec;
  if (fs::is_directory(fallback, ec)) return fallback.string();
#endif
  throw Error("no model given: -m PATH is required (there is no default model in models/default/ yet)");
}

std::shared_ptr<const Model> load_model(const ModelArgs& args) {
  const std::string path = resolve_model_path(args.model_path);
  check_input_path(path, "model", /*folder_ok=*/true);
  if (!args.tokenizer_path.empty()) check_input_path(args.tokenizer_path, "--tokenizer: file");
  LoadOptions opts;
  opts.tokenizer_path = args.tokenizer_path;
  opts.keep_quantized = args.dtype == "native";
  opts.weight_dtype = opts.keep_quantized ? DType::F32 : dtype_from_name(args.dtype);
  opts.mmap = !args.no_mmap;
  return Model::load(path, opts);
}

const Tokenizer& require_tokenizer(const Model& model) {
  check(model.tokenizer() != nullptr, "no tokenizer found beside model '" + model.path() +
                                          "': pass one with --tokenizer PATH");
  return *model.tokenizer();
}

}  // namespace sinklab::cli
