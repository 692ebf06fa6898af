#pragma once

// NOTE: [hyperparameter table] One description of each EngineConfig field: its name, the field
// itself (type and default come from EngineConfig), its command-line flag, its help text, which
// methods read it and the rule its values obey. Everything that needs every field iterates over
// this table instead of listing the fields again: EngineConfig::validate(), the `den` flags and
// config files (cli/hyperparameter_flags.h), the JSON report's "config", the checkpoint's Config
// message (matched by field name through protobuf reflection) and the Python module. Adding a
// hyperparameter is one entry here, plus its field in serialization/den.proto when checkpoints
// store it (a test fails without it) and its row in docs/configuration.md (a test fails without it).

#include "engine/config.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace den::engine {

/// Which methods read a hyperparameter: the training shared by every method, or DEN's own steps.
enum class Scope { EveryMethod, Den };

/// What a valid value is: `ok` (nullptr: any value) and the rule in words ("must be >= 0").
template <typename T>
struct Rule {
  bool (*ok)(const T&) = nullptr;
  const char* text = "";
};

/// One row of the table. Built with `hyperparameter(...)` and the chained setters below.
template <typename T>
struct Hyperparameter {
  using Value = T;
  const char* name;         ///< snake_case: the JSON report's key, den.proto's Config field, the Python keyword
  T EngineConfig::*member;  ///< the field
  const char* flag;         ///< the `den` flag ("--max-iter"); "" for a field that has none
  const char* help;         ///< one line, lower case unless it starts with a name
  Scope scope = Scope::EveryMethod;
  Rule<T> rule{};
  /// The value in effect, for fields whose default is resolved later (-1 = max_iter/10); the JSON
  /// report writes this one. nullptr: the field itself.
  T (EngineConfig::*effective)() const = nullptr;
  bool checkpointed = true;  ///< false: checkpoints do not store it (the device: they load on the CPU)
  /// A second flag (and config-file key) for the same field, kept for scripts that use an older
  /// name; "" for none.
  const char* alias = "";

  Hyperparameter& den_only() { scope = Scope::Den; return *this; }
  Hyperparameter& check(bool (*ok)(const T&), const char* text) { rule = {ok, text}; return *this; }
  Hyperparameter& resolved_by(T (EngineConfig::*f)() const) { effective = f; return *this; }
  Hyperparameter& not_checkpointed() { checkpointed = false; return *this; }
  Hyperparameter& also_flag(const char* f) { alias = f; return *this; }

  const T& value(const EngineConfig& c) const { return c.*member; }
  T effective_value(const EngineConfig& c) const { return effective != nullptr ? (c.*effective)() : c.*member; }
  /// Whether `v` obeys the rule.
  bool valid(const T& v) const { return rule.ok == nullptr || rule.ok(v); }
};

template <typename T>
Hyperparameter<T> hyperparameter(const char* name, T EngineConfig::*member, const char* flag, const char* help) {
  return Hyperparameter<T>{name, member, flag, help};
}

// ---------------------------------------------------------------------------------------------
// The text form of a value, as flags, config files, the resume check and messages write it.
// ---------------------------------------------------------------------------------------------

std::string to_text(int64_t v);
std::string to_text(uint64_t v);
std::string to_text(double v);  ///< the shortest text that reads back to the same double
std::string to_text(bool v);    ///< "true" | "false"
std::string to_text(const std::string& v);
std::string to_text(const std::vector<int64_t>& v);  ///< "312,128"
inline std::string to_text(const Layers& v) { return layers_to_text(v); }
inline std::string to_text(LossKind v) { return to_string(v); }
inline std::string to_text(SplitPolicy v) { return to_string(v); }

/// Parses `text` into `out`; throws std::invalid_argument saying what was expected (`out` unchanged).
void from_text(const std::string& text, int64_t& out);
void from_text(const std::string& text, uint64_t& out);
void from_text(const std::string& text, double& out);
void from_text(const std::string& text, bool& out);
void from_text(const std::string& text, std::string& out);
void from_text(const std::string& text, std::vector<int64_t>& out);  ///< comma separated integers
void from_text(const std::string& text, Layers& out);  ///< parse_layers
void from_text(const std::string& text, LossKind& out);
void from_text(const std::string& text, SplitPolicy& out);

/// Every value of an enum-valued hyperparameter, for help texts, the CLI's checks and the checkpoint.
template <typename E>
std::vector<E> enum_values();
template <>
inline std::vector<LossKind> enum_values<LossKind>() { return {LossKind::Softmax, LossKind::Sigmoid}; }
template <>
inline std::vector<SplitPolicy> enum_values<SplitPolicy>() { return {SplitPolicy::Always, SplitPolicy::AfterExpansion}; }

/// What check_layers finds wrong with `layers`, or "" when nothing.
std::string layers_problem(const Layers& layers);

namespace detail {
inline bool finite_non_negative(const double& v) { return v >= 0 && v <= std::numeric_limits<double>::max(); }
}  // namespace detail

/// Calls `visit(entry)` for every field of EngineConfig, in declaration order; `entry` is a
/// Hyperparameter<T> for the field's type T.
template <typename Visitor>
void visit_hyperparameters(Visitor&& visit) {
  using C = EngineConfig;
  constexpr auto non_negative = &detail::finite_non_negative;
  constexpr const char* kNonNegative = "must be >= 0";
  visit(hyperparameter("layers", &C::layers, "--layers",
                       "hidden layers, lowest first: fc:256 (or 256), conv5x5:32 (conv3x3s2p1:32: stride 2, padding 1), "
                       "maxpool2, avgpool2 or gap (global average) after a conv layer")
            .check([](const Layers& v) { return layers_problem(v).empty(); },
                   "must list at least one layer, each with units; conv layers first; pooling only after conv")
            .also_flag("--hidden"));
  visit(hyperparameter("input_shape", &C::input_shape, "--input-shape",
                       "the input's C,H,W for conv layers (default: from IDX files; empty = flat features)")
            .check([](const std::vector<int64_t>& v) {
              return v.empty() || (v.size() == 3 && std::all_of(v.begin(), v.end(), [](int64_t n) { return n >= 1; }));
            }, "must be C,H,W (three sizes >= 1), or empty for flat features"));
  visit(hyperparameter("max_iter", &C::max_iter, "--max-iter", "iterations per training phase (early stopping may end sooner)")
            .check([](const int64_t& v) { return v >= 1; }, "must be >= 1"));
  visit(hyperparameter("head_iters", &C::head_iters, "--head-iters", "iterations of the sparse-head phase (-1 = max-iter/10)")
            .den_only()
            .check([](const int64_t& v) { return v >= -1; }, "must be >= 0, or -1 for max-iter/10")
            .resolved_by(&C::resolved_head_iters));
  visit(hyperparameter("batch_size", &C::batch_size, "--batch-size", "mini-batch size")
            .check([](const int64_t& v) { return v >= 1; }, "must be >= 1"));
  visit(hyperparameter("lr", &C::lr, "--lr", "Adam learning rate")
            .check([](const double& v) { return v > 0 && v <= std::numeric_limits<double>::max(); },
                   "must be a positive number"));
  visit(hyperparameter("lr_decay", &C::lr_decay, "--lr-decay", "staircase learning-rate decay per epoch")
            .check([](const double& v) { return v > 0 && v <= 1; }, "must be in (0, 1]"));
  visit(hyperparameter("mu", &C::mu, "--mu", "L1 strength (soft-threshold per step)").den_only().check(non_negative, kNonNegative));
  visit(hyperparameter("l2", &C::l2, "--l2", "L2 strength (weight decay, every method)").check(non_negative, kNonNegative));
  visit(hyperparameter("gamma", &C::gamma, "--gamma", "group-lasso strength for expanded units")
            .den_only().check(non_negative, kNonNegative));
  visit(hyperparameter("lambda", &C::lambda, "--lambda", "drift penalty toward the previous task's weights")
            .den_only().check(non_negative, kNonNegative));
  visit(hyperparameter("k", &C::k, "--k", "units added per hidden layer by dynamic expansion")
            .den_only().check([](const int64_t& v) { return v >= 0; }, kNonNegative));
  visit(hyperparameter("tau", &C::tau, "--tau", "expand when the validation loss after selective retraining exceeds tau")
            .den_only().check(non_negative, kNonNegative));
  visit(hyperparameter("sigma", &C::sigma, "--sigma", "split units whose incoming weights drifted by more than sigma (L2)")
            .den_only().check(non_negative, kNonNegative));
  visit(hyperparameter("max_splits_per_layer", &C::max_splits_per_layer, "--max-splits",
                       "most units split per layer per task (-1 = k)")
            .den_only()
            .check([](const int64_t& v) { return v >= -1; }, "must be >= 0, or -1 for k")
            .resolved_by(&C::resolved_max_splits));
  visit(hyperparameter("split_policy", &C::split_policy, "--split-policy", "always (paper) or after-expansion (released code)")
            .den_only());
  visit(hyperparameter("loss", &C::loss, "--loss", "head loss: softmax (cross-entropy) or sigmoid (per-output BCE)"));
  visit(hyperparameter("prox_scale_by_lr", &C::prox_scale_by_lr, "--prox-scale-lr", "scale prox thresholds by the learning rate")
            .den_only());
  visit(hyperparameter("freeze_existing", &C::freeze_existing, "--freeze-existing",
                       "grow only: skip selective retraining and splits, so earlier tasks never change")
            .den_only());
  visit(hyperparameter("prune_to_fixpoint", &C::prune_to_fixpoint, "--prune-fixpoint",
                       "after expansion, prune new units with a zero incoming group or zero outgoing weights, "
                       "repeated until nothing changes")
            .den_only());
  visit(hyperparameter("reset_zeroed_moments", &C::reset_zeroed_moments, "--reset-zeroed-moments",
                       "a row zeroed by the group prox loses its Adam momentum")
            .den_only());
  visit(hyperparameter("selection_budget", &C::selection_budget, "--selection-budget",
                       "fraction of each layer's units selective retraining may select, those most strongly connected "
                       "to the new head (0 = all that nonzero weights reach)")
            .den_only()
            .check([](const double& v) { return v >= 0 && v <= 1; }, "must be in [0, 1]"));
  visit(hyperparameter("restore_drifted", &C::restore_drifted, "--restore-drifted",
                       "after selective retraining every old unit gets its previous weights back, the most drifted "
                       "split first, so earlier tasks never change")
            .den_only());
  visit(hyperparameter("relative_sigma", &C::relative_sigma, "--relative-sigma",
                       "sigma is relative to the norm of a unit's previous incoming weights")
            .den_only());
  visit(hyperparameter("relative_tau", &C::relative_tau, "--relative-tau",
                       "tau is compared with the validation loss over the loss of predicting the label frequencies")
            .den_only());
  visit(hyperparameter("expansion_min_gain", &C::expansion_min_gain, "--expansion-min-gain",
                       "undo an expansion that did not lower the validation loss by this fraction (0 = keep every one)")
            .den_only()
            .check([](const double& v) { return v >= 0 && v < 1; }, "must be in [0, 1)"));
  visit(hyperparameter("selective_iter_fraction", &C::selective_iter_fraction, "--selective-iter-fraction",
                       "iterations of selective retraining as a fraction of max-iter (0 = all of them)")
            .den_only()
            .check([](const double& v) { return v >= 0 && v <= 1; }, "must be in [0, 1]"));
  visit(hyperparameter("eval_every", &C::eval_every, "--eval-every", "iterations between validation evaluations")
            .check([](const int64_t& v) { return v >= 1; }, "must be >= 1"));
  visit(hyperparameter("early_stop_window", &C::early_stop_window, "",
                       "validation evaluations in early stopping's moving mean")
            .check([](const int64_t& v) { return v >= 2; }, "must be >= 2"));
  visit(hyperparameter("early_stop_tol", &C::early_stop_tol, "",
                       "stop when the moving mean of the validation loss changes by less than this")
            .check(non_negative, kNonNegative));
  visit(hyperparameter("early_stop_patience", &C::early_stop_patience, "--early-stop-patience",
                       "stop a phase after N evaluations without improvement and return to its best state "
                       "(0 = the released code's moving-mean rule)")
            .check([](const int64_t& v) { return v >= 0; }, "must be >= 0 (0 = off)"));
  visit(hyperparameter("early_stop_min_delta", &C::early_stop_min_delta, "--early-stop-min-delta",
                       "with patience: the relative improvement of the validation loss that counts")
            .check([](const double& v) { return v >= 0 && v < 1; }, "must be in [0, 1)"));
  visit(hyperparameter("max_eval_samples", &C::max_eval_samples, "",
                       "validation samples used for early stopping (all if fewer)")
            .check([](const int64_t& v) { return v >= 1; }, "must be >= 1"));
  visit(hyperparameter("seed", &C::seed, "--seed", "random seed (data stream and training)"));
  visit(hyperparameter("device", &C::device, "--device", "training device: cpu, or cuda[:N] with a CUDA LibTorch and a GPU")
            .check([](const std::string& v) { return v == "cpu" || v.rfind("cuda", 0) == 0; }, "must be cpu or cuda[:N]")
            .not_checkpointed());
}

}  // namespace den::engine
