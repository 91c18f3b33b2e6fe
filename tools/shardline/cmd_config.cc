// shardline config docs            print docs/CONFIGURATION.md (generated from the tables)
// shardline config check FILE      validate a .properties file: KPL keys (--scope producer, the
//                                  default) or KCL keys (--scope consumer)
#include <cstdio>
#include <string>
#include <vector>

#include "aws/aws_errors.h"
#include "commands.h"
#include "shardline/config.h"

namespace shardline::cli {

namespace {
struct ConfigArgs {
  std::string file;
  std::string scope = "producer";
};

// Load `file` into a Config with its defaults: warnings and the error on stderr, exit 2 on error.
template <class Config>
int check_file(const std::string& file) {
  Config cfg;
  std::vector<std::string> warnings;
  const Status s = load_properties_file(file, cfg, &warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "shardline: warning: %s\n", w.c_str());
  if (!s.ok()) {
    std::fprintf(stderr, "shardline: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  std::printf("%s: OK\n", file.c_str());
  return 0;
}
}  // namespace

Runner add_config(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand("config", "Inspect and validate settings.");
  sub->require_subcommand(1);
  CLI::App* docs = sub->add_subcommand("docs", "Print the settings reference (Markdown).");
  CLI::App* errors = sub->add_subcommand("errors", "Print the AWS error table (Markdown).");
  CLI::App* check = sub->add_subcommand(
      "check", "Validate a .properties file (KPL key names, or KCL ones with --scope consumer).");
  check->add_option("file", args->file, "The .properties file")->required();
  check
      ->add_option("--scope", args->scope,
                   "Which settings the file holds: producer (KPL keys, `shardline put --config`) "
                   "or consumer (KCL keys, `shardline consume --config`)")
      ->check(CLI::IsMember({"producer", "consumer"}))
      ->default_val("producer");
  return [args, docs, errors, check]() -> int {
    if (errors->parsed()) {
      const std::string md = detail::aws_errors_markdown();
      std::fwrite(md.data(), 1, md.size(), stdout);
      return 0;
    }
    if (docs->parsed()) {
      const std::string md = configuration_markdown();
      std::fwrite(md.data(), 1, md.size(), stdout);
      return 0;
    }
    if (check->parsed()) {
      return args->scope == "consumer" ? check_file<ConsumerConfig>(args->file)
                                       : check_file<ProducerConfig>(args->file);
    }
    return 2;
  };
}

}  // namespace shardline::cli
