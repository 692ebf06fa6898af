#pragma once

#include "engine/architecture.h"

#include <c10/core/Device.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace den::engine {

/// Loss of a task head: softmax cross-entropy, or per-output sigmoid BCE as in the released DEN code.
enum class LossKind { Softmax, Sigmoid };
/// When split/duplication runs: at every task t >= 2 (paper, Alg. 1) or only after an expansion
/// (the released code's behaviour).
enum class SplitPolicy { Always, AfterExpansion };

LossKind parse_loss(const std::string& name);        ///< "softmax" | "sigmoid"
SplitPolicy parse_split_policy(const std::string& name);  ///< "always" | "after-expansion"
std::string to_string(LossKind loss);
std::string to_string(SplitPolicy policy);

/// Hyperparameters of a DEN engine. Defaults are the released code's (DEN_run.py; docs/algorithm.md).
/// Setters return *this for chaining, as torch::nn options do; `validate()` throws
/// std::invalid_argument naming the setting and the bad value, and the Engine calls it.
struct EngineConfig {
  /// The hidden layers of the base network (engine/architecture.h): fc units, or conv filters
  /// with their geometry; "312,128" is two fc layers.
  Layers layers = {312, 128};
  /// The input's C,H,W, which conv layers need; empty = flat features. The CLI takes it from the
  /// IDX files' dimensions when a conv layer asks for it.
  std::vector<int64_t> input_shape;
  int64_t max_iter = 4300;       ///< iterations per training phase (upper bound with early stopping)
  int64_t head_iters = -1;       ///< sparse-head phase of selective retraining; -1 = max_iter / 10
  int64_t batch_size = 256;
  double lr = 1e-3;              ///< Adam learning rate
  double lr_decay = 0.95;        ///< staircase decay factor per epoch
  double mu = 1e-5;              ///< L1 strength (proximal soft-threshold)
  double l2 = 1e-4;              ///< L2 strength
  double gamma = 1e-3;           ///< group-lasso strength for expanded units
  double lambda = 0.5;           ///< drift penalty toward the previous task's weights
  int64_t k = 10;                ///< units added per hidden layer by dynamic expansion
  double tau = 0.01;             ///< expand when the validation loss after selective retraining exceeds this
  double sigma = 0.05;           ///< split a unit whose incoming weights drifted by more than this (L2)
  int64_t max_splits_per_layer = -1;  ///< -1 = k
  SplitPolicy split_policy = SplitPolicy::Always;
  LossKind loss = LossKind::Softmax;
  bool prox_scale_by_lr = false; ///< false: thresholds are mu, gamma per step unscaled (released code)
  bool freeze_existing = false;  ///< grow only: skip selective retraining and splits (no forgetting at all)
  /// NOTE: [prune to fixpoint] After expansion, drop new units whose incoming group is zero or whose
  /// outgoing weights are zero everywhere above, repeated until nothing changes. false = one sweep
  /// over zero incoming groups (the released code's).
  bool prune_to_fixpoint = false;
  /// NOTE: [zeroed-group momentum] In phases with the group prox, a row that the prox zeroed loses
  /// its Adam momentum (first moment). false = moments kept (the released code's).
  bool reset_zeroed_moments = false;
  /// NOTE: [selection budget] Fraction of each hidden layer's units that selective retraining may
  /// select, the ones most strongly connected to the new head; 0 = every unit that nonzero weights
  /// reach from the head (the breadth-first search of the paper and the released code).
  double selection_budget = 0.0;
  /// NOTE: [restore drifted] After selective retraining every old unit gets its previous incoming
  /// weights back; the most drifted (sigma, max_splits) first leave their new weights to a copy born
  /// at this task. Earlier tasks then never change. false = only split units are restored.
  bool restore_drifted = false;
  /// sigma is relative to the norm of the unit's previous incoming weights (false: absolute, L2).
  bool relative_sigma = false;
  /// NOTE: [relative tau] tau is compared with the validation loss divided by the loss of predicting
  /// the training labels' frequencies, which means the same for softmax and sigmoid heads
  /// (false: with the validation loss itself).
  bool relative_tau = false;
  /// NOTE: [expansion evidence] An expansion whose units did not lower the validation loss by at
  /// least this fraction is undone; 0 = every expansion is kept (the released code's).
  double expansion_min_gain = 0.0;
  /// NOTE: [short selective phase] Selective retraining's iterations as a fraction of max_iter; 0
  /// (or 1) = all of max_iter (the released code's).
  double selective_iter_fraction = 0.0;
  int64_t eval_every = 100;      ///< iterations between validation-loss evaluations
  int64_t early_stop_window = 10;
  double early_stop_tol = 1e-6;  ///< stop when the moving mean of validation loss changes by less
  /// NOTE: [patience] Evaluations without improvement after which a phase stops and returns to its
  /// best state; 0 = off, the moving-mean rule above (the released code's).
  int64_t early_stop_patience = 0;
  /// With patience: an evaluation improves when its loss is below best * (1 - early_stop_min_delta).
  double early_stop_min_delta = 1e-3;
  int64_t max_eval_samples = 5000;  ///< validation samples used for early stopping (all if fewer)
  uint64_t seed = 1;
  std::string device = "cpu";    ///< "cpu" or "cuda[:N]" (needs a LibTorch with CUDA and a GPU)

  EngineConfig& set_layers(Layers v) { layers = std::move(v); return *this; }
  /// All-fc layers of these sizes.
  EngineConfig& set_hidden(const std::vector<int64_t>& sizes) { layers.assign(sizes.begin(), sizes.end()); return *this; }
  EngineConfig& set_input_shape(std::vector<int64_t> v) { input_shape = std::move(v); return *this; }
  EngineConfig& set_max_iter(int64_t v) { max_iter = v; return *this; }
  EngineConfig& set_head_iters(int64_t v) { head_iters = v; return *this; }
  EngineConfig& set_batch_size(int64_t v) { batch_size = v; return *this; }
  EngineConfig& set_lr(double v) { lr = v; return *this; }
  EngineConfig& set_lr_decay(double v) { lr_decay = v; return *this; }
  EngineConfig& set_mu(double v) { mu = v; return *this; }
  EngineConfig& set_l2(double v) { l2 = v; return *this; }
  EngineConfig& set_gamma(double v) { gamma = v; return *this; }
  EngineConfig& set_lambda(double v) { lambda = v; return *this; }
  EngineConfig& set_k(int64_t v) { k = v; return *this; }
  EngineConfig& set_tau(double v) { tau = v; return *this; }
  EngineConfig& set_sigma(double v) { sigma = v; return *this; }
  EngineConfig& set_max_splits_per_layer(int64_t v) { max_splits_per_layer = v; return *this; }
  EngineConfig& set_split_policy(SplitPolicy v) { split_policy = v; return *this; }
  EngineConfig& set_loss(LossKind v) { loss = v; return *this; }
  EngineConfig& set_prox_scale_by_lr(bool v) { prox_scale_by_lr = v; return *this; }
  EngineConfig& set_freeze_existing(bool v) { freeze_existing = v; return *this; }
  EngineConfig& set_prune_to_fixpoint(bool v) { prune_to_fixpoint = v; return *this; }
  EngineConfig& set_reset_zeroed_moments(bool v) { reset_zeroed_moments = v; return *this; }
  EngineConfig& set_selection_budget(double v) { selection_budget = v; return *this; }
  EngineConfig& set_restore_drifted(bool v) { restore_drifted = v; return *this; }
  EngineConfig& set_relative_sigma(bool v) { relative_sigma = v; return *this; }
  EngineConfig& set_relative_tau(bool v) { relative_tau = v; return *this; }
  EngineConfig& set_expansion_min_gain(double v) { expansion_min_gain = v; return *this; }
  EngineConfig& set_selective_iter_fraction(double v) { selective_iter_fraction = v; return *this; }
  EngineConfig& set_eval_every(int64_t v) { eval_every = v; return *this; }
  EngineConfig& set_early_stop_patience(int64_t v) { early_stop_patience = v; return *this; }
  EngineConfig& set_early_stop_min_delta(double v) { early_stop_min_delta = v; return *this; }
  EngineConfig& set_seed(uint64_t v) { seed = v; return *this; }
  EngineConfig& set_device(std::string v) { device = std::move(v); return *this; }

  /// Iterations of the sparse-head phase after resolving the -1 default.
  int64_t resolved_head_iters() const { return head_iters >= 0 ? head_iters : std::max<int64_t>(1, max_iter / 10); }
  /// Iterations of selective retraining: selective_iter_fraction of max_iter (at least 1), or all.
  int64_t resolved_selective_iters() const {
    if (selective_iter_fraction <= 0) return max_iter;
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(selective_iter_fraction * static_cast<double>(max_iter))));
  }
  /// Split cap per layer after resolving the -1 default.
  int64_t resolved_max_splits() const { return max_splits_per_layer >= 0 ? max_splits_per_layer : k; }

  /// The device to train on, checked to be usable here: std::invalid_argument for an unknown name,
  /// a CUDA device without a CUDA LibTorch, or no such GPU.
  at::Device resolved_device() const;

  /// Throws std::invalid_argument naming the first invalid setting and its value.
  void validate() const;
};

/// NOTE: [presets] Named sets of hyperparameters (docs/algorithm.md, "Presets"):
///  - "released": the authors' released code's semantics, the field defaults of EngineConfig;
///  - "den": den's own DEN, chosen on a validation split of the training data; the default of the
///    `den` command line and the Python module.
/// Throws std::invalid_argument naming the preset and the known ones for any other name.
EngineConfig preset(const std::string& name);
/// The names preset() knows, the default first.
std::vector<std::string> preset_names();

}  // namespace den::engine
