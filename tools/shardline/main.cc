// shardline: the command-line tool. One file per subcommand (cmd_*.cc).
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "shardline/version.h"

int main(int argc, char** argv) {
  CLI::App app{"shardline: a native toolkit for Amazon Kinesis Data Streams"};
  app.name("shardline");
  app.set_version_flag("--version", std::string(shardline::kVersion));
  app.require_subcommand(1);
  app.fallthrough(false);

  std::map<std::string, shardline::cli::Runner> runners;
  runners["agg"] = shardline::cli::add_agg(app);
  runners["deagg"] = shardline::cli::add_deagg(app);
  runners["config"] = shardline::cli::add_config(app);
  runners["streams"] = shardline::cli::add_streams(app);
  runners["tail"] = shardline::cli::add_tail(app);
  runners["put"] = shardline::cli::add_put(app);
  runners["leases"] = shardline::cli::add_leases(app);
  runners["consume"] = shardline::cli::add_consume(app);
  runners["multilang"] = shardline::cli::add_multilang(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::Normal).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::printf("shardline %s\n", std::string(shardline::kVersion).c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    // One clear line; `--help` explains the rest.
    std::string what = e.what();
    if (what.empty()) what = e.get_name();
    std::fprintf(stderr, "shardline: error: %s (see --help)\n", what.c_str());
    return 2;
  }
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = runners.find(sub->get_name());
    if (it != runners.end()) return it->second();
  }
  return 2;
}
