#pragma once

// `den add-task`: one more task into a checkpoint, from its run's stream or from the task's own samples.

#include "cli/run_options.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace den::cli {

/// Options of `den add-task`.
struct AddTaskOptions {
  std::string checkpoint;
  std::string output;  ///< default: write back to `checkpoint`
  RunOptions run;      ///< stream flags (defaults from the checkpoint's run)
  int64_t task_index = 0;  ///< task of the stream to learn; 0 = the next one
  std::string classes;     ///< --classes: the classes of a task from the user's own samples
  int64_t exemplars = 20;  ///< exemplars kept per class of such a task
  int threads = 0;
  bool quiet = false;
  const CLI::App* command = nullptr;
};
CLI::App* add_add_task_command(CLI::App& app, AddTaskOptions& options);
int add_task_command(AddTaskOptions& options);

}  // namespace den::cli
