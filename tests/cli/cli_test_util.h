#pragma once

// Helpers shared by the tests of the `den` executable: run it, and write small IDX data sets.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <chrono>
#include <csignal>
#include <functional>
#include <thread>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace den::testing {

/// Exit code and combined stdout + stderr of one `den` process.
struct Result {
  int code = -1;
  std::string output;
};

/// Runs `den args` through the shell; `prefix` goes before it (environment settings such as
/// "TMPDIR=/x ", or "umask 027; ").
inline Result run_den(const std::string& args, const std::string& prefix = "") {
  const std::string command = prefix + std::string(DEN_CLI_PATH) + " " + args + " 2>&1";
  Result result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.output += buffer.data();
  const int status = pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

/// Starts `prefix den args` in the background (output discarded) and returns its pid.
inline pid_t spawn_den(const std::string& args, const std::string& prefix = "") {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string cmd = prefix + "exec " + std::string(DEN_CLI_PATH) + " " + args + " > /dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

/// Waits up to `seconds` for `ready` while process `pid` runs; false on time out or when it ended.
inline bool wait_for(const std::function<bool()>& ready, pid_t pid, int seconds = 120) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!ready()) {
    siginfo_t info{};  // WNOWAIT: look without reaping, wait_exit still gets the status
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != 0) {
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// The exit code of `pid`, -signal when a signal ended it.
inline int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/// The rows of a CSV file split at every comma (predictions: sample or file, class, score, ...).
inline std::vector<std::vector<std::string>> read_rows(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream s(line);
    std::string f;
    while (std::getline(s, f, ',')) fields.push_back(f);
    rows.push_back(fields);
  }
  return rows;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

/// `j` without the object members named in `keys`, at any depth.
inline nlohmann::json without_keys(const nlohmann::json& j, const std::vector<std::string>& keys) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) out[it.key()] = without_keys(it.value(), keys);
    }
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(without_keys(v, keys));
    return out;
  }
  return j;
}

/// A report without wall times (`seconds`, `optimizer_seconds`), which differ between runs.
inline nlohmann::json without_seconds(const nlohmann::json& j) { return without_keys(j, {"seconds", "optimizer_seconds"}); }

/// A report without wall times and loss curves: a task restored from a checkpoint has no curve (its
/// progress was another process's), so a resumed run's report equals a whole run's without them.
inline nlohmann::json without_seconds_and_curves(const nlohmann::json& j) {
  return without_keys(j, {"seconds", "optimizer_seconds", "curve"});
}

inline void write_be32(std::ofstream& out, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  out.write(reinterpret_cast<const char*>(b), 4);
}

/// An IDX images/labels pair of `n` 6x6 images in 4 classes: class c lights up rows c and c+2.
inline void write_idx_pair(const std::filesystem::path& dir, const std::string& prefix, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::ofstream images(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream labels(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(images, 0x00000803);
  write_be32(images, n);
  write_be32(images, 6);
  write_be32(images, 6);
  write_be32(labels, 0x00000801);
  write_be32(labels, n);
  for (int i = 0; i < n; ++i) {
    const int label = i % 4;
    for (int p = 0; p < 36; ++p) {
      const bool on = p / 6 == label || p / 6 == label + 2;
      images.put(static_cast<char>(on ? 180 + rng() % 60 : rng() % 60));
    }
    labels.put(static_cast<char>(label));
  }
}

}  // namespace den::testing
