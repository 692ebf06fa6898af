// `den export`.

#include "cli/export_command.h"
#include "cli/flag_checks.h"

#include "cli/exit_codes.h"
#include "cli/report.h"
#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace den::cli {

namespace {

int64_t parse_task(const std::string& text) {
  if (text == "all") return io::kAllTasks;
  size_t used = 0;
  int64_t value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < 1) {
    throw std::invalid_argument("--task '" + text + "' must be a task id (1, 2, ...), 'all' or 'agnostic'");
  }
  return value;
}

/// How a child process ended, for messages: "exit status 3", "killed by signal 9 (Killed)".
std::string child_status_text(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::strsignal(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (") + name + ")" : "");
  }
  return "status " + std::to_string(status);
}

/// Renders DOT to SVG with Graphviz's `dot` (run without a shell), in a private directory under
/// the system's temporary directory ($TMPDIR, else /tmp). Throws OutputError.
std::string render_svg(const std::string& dot) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path tmp = fs::temp_directory_path(ec);
  if (ec) throw OutputError("no temporary directory for Graphviz: " + ec.message());
  std::string dir_name = (tmp / "den-export-XXXXXX").string();
  if (::mkdtemp(dir_name.data()) == nullptr) {
    throw OutputError("cannot create a temporary directory in '" + tmp.string() + "' for Graphviz: " +
                      std::strerror(errno));
  }
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dir_name};
  const std::string in_path = (cleanup.dir / "network.dot").string();
  const std::string out_path = (cleanup.dir / "network.svg").string();
  {
    std::ofstream in(in_path, std::ios::binary);
    in << dot;
    if (!in.flush()) throw OutputError("cannot write a temporary file '" + in_path + "' for Graphviz");
  }

  std::vector<std::string> args = {"dot", "-Tsvg", "-o", out_path, in_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ) != 0) {
    throw OutputError("--format svg needs Graphviz's 'dot' on the PATH (apt install graphviz), or use --format dot");
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw OutputError(std::string("waiting for Graphviz 'dot' failed: ") + std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw OutputError("Graphviz 'dot -Tsvg' failed (" + child_status_text(status) + ")");
  }
  std::ifstream svg(out_path, std::ios::binary);
  std::ostringstream bytes;
  bytes << svg.rdbuf();
  return bytes.str();
}

}  // namespace

CLI::App* add_export_command(CLI::App& app, ExportOptions& o) {
  CLI::App* cmd = app.add_subcommand("export", "Export a task's network (or all tasks) from a checkpoint");
  cmd->add_option("checkpoint", o.checkpoint, "Checkpoint file")->required();
  cmd->add_option("--task", o.task,
                  "Task id, 'all' (one model with every task's head) or 'agnostic' (torchscript: one model that "
                  "scores every class seen, as den predict does)")
      ->capture_default_str();
  cmd->add_option("--format", o.format, "torchscript, onnx, dot or svg (DOT rendered by Graphviz)")
      ->check(one_of({"torchscript", "onnx", "dot", "svg"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", o.output, "Output file (- : standard output, for --format dot and svg)")->required();
  cmd->add_flag("--per-unit", o.per_unit,
                "dot, svg: one node per unit (default: one node per layer and birth stage, sized by its units)");
  return cmd;
}

int export_command(const ExportOptions& o) {
  const bool agnostic = o.task == "agnostic";
  if (agnostic && o.format != "torchscript") {
    throw std::invalid_argument("--task agnostic is exported as --format torchscript only, not " + o.format);
  }
  const int64_t task = agnostic ? io::kAllTasks : parse_task(o.task);
  if (o.format == "onnx" && !io::onnx_supported()) {
    throw std::invalid_argument("--format onnx: this den was built without ONNX support (libonnx-dev)");
  }
  if (o.per_unit && o.format != "dot" && o.format != "svg") {
    throw std::invalid_argument("--per-unit is a flag of --format dot and svg, not " + o.format);
  }
  // -o -: the text formats go to standard output.
  const bool to_stdout = o.output == "-";
  if (to_stdout && o.format != "dot" && o.format != "svg") {
    throw std::invalid_argument("-o -: --format " + o.format + " is binary; give a file name (standard output takes "
                                "--format dot or svg)");
  }
  if (!to_stdout) check_writable(o.output);
  check_distinct_files({{"-o", to_stdout ? std::string() : o.output}}, {{"checkpoint", o.checkpoint}});
  const io::LoadedCheckpoint c = io::load_checkpoint(o.checkpoint);
  io::check_export_task(c.engine, task, true);
  io::ExportInfo info;
  if (c.extras.run) {
    info.normalization = c.extras.run->normalize;
    info.data_dir = c.extras.run->data_dir;
  }
  const io::NetworkView view = o.per_unit ? io::NetworkView::PerUnit : io::NetworkView::Grouped;
  if (c.extras.normalization) {  // the exported model takes raw inputs
    info.normalization = c.extras.normalization->mode;
    info.shift = c.extras.normalization->shift;
    info.scale = c.extras.normalization->scale;
  }
  info.images = c.extras.images;  // the exported module takes raw images, as den predict --images
  info.trunk = c.extras.trunk;
  info.class_names = c.extras.class_names;
  if (agnostic) {
    io::export_torchscript_agnostic(c.engine, io::agnostic_classifier(c, o.checkpoint), o.output, info);
  } else if (o.format == "torchscript") {
    io::export_torchscript(c.engine, task, o.output, info);
  } else if (o.format == "onnx") {
    io::export_onnx(c.engine, task, o.output, info);
  } else {
    const std::string text =
        o.format == "dot" ? io::dot_graph(c.engine, task, view) : render_svg(io::dot_graph(c.engine, task, view));
    if (to_stdout) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      io::write_file_atomically(o.output, text);
    }
  }
  // The note goes where it does not mix with the export.
  std::fprintf(to_stdout ? stderr : stdout, "exported %s of %s as %s to %s\n",
              agnostic ? "the task-agnostic classifier" : task == io::kAllTasks ? "all tasks" : ("task " + o.task).c_str(),
              o.checkpoint.c_str(), o.format.c_str(), to_stdout ? "standard output" : o.output.c_str());
  return kOk;
}

}  // namespace den::cli
