// The CLI's subcommands. Each registers its options on the parent app and runs when chosen.
// Exit codes: 0 ok, 1 a failure while running (e.g. unreadable input lines), 2 bad arguments.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace shardline::cli {

/// Registers a subcommand; returns the function that runs it (after parsing succeeded).
using Runner = std::function<int()>;

Runner add_agg(CLI::App& app);
Runner add_deagg(CLI::App& app);
Runner add_config(CLI::App& app);
Runner add_streams(CLI::App& app);
Runner add_tail(CLI::App& app);
Runner add_put(CLI::App& app);
Runner add_leases(CLI::App& app);
Runner add_consume(CLI::App& app);
Runner add_multilang(CLI::App& app);

/// The default lease store of an application (`leases`, `consume`): a SQLite file named after
/// it in the working directory, "sqlite:APPLICATION.leases.db".
std::string default_lease_table(const std::string& application);

}  // namespace shardline::cli
