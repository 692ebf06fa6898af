#pragma once

// One description of each EngineConfig field: its name, the field itself (type and default come
// from EngineConfig), its command-line flag and its help text. Code that needs every field iterates
// over this table instead of listing the fields again (the Python module's EngineConfig does;
// EngineConfig::validate() checks the values).

#include "engine/config.h"

namespace den::engine {

/// Calls `visit(name, member, flag, help)` for every field of EngineConfig, in declaration order.
/// `member` is a pointer to the field; `flag` is the `den` command line's flag, or "" for a field
/// that has none.
template <typename Visitor>
void visit_hyperparameters(Visitor&& visit) {
  visit("hidden", &EngineConfig::hidden, "--hidden", "hidden layer sizes of the base network");
  visit("max_iter", &EngineConfig::max_iter, "--max-iter", "iterations per training phase (early stopping may end sooner)");
  visit("head_iters", &EngineConfig::head_iters, "--head-iters", "iterations of the sparse-head phase (-1 = max_iter / 10)");
  visit("batch_size", &EngineConfig::batch_size, "--batch-size", "mini-batch size");
  visit("lr", &EngineConfig::lr, "--lr", "Adam learning rate");
  visit("lr_decay", &EngineConfig::lr_decay, "--lr-decay", "staircase learning-rate decay per epoch");
  visit("mu", &EngineConfig::mu, "--mu", "L1 strength (soft-threshold per step)");
  visit("l2", &EngineConfig::l2, "--l2", "L2 strength (weight decay)");
  visit("gamma", &EngineConfig::gamma, "--gamma", "group-lasso strength for expanded units");
  visit("lambda_", &EngineConfig::lambda, "--lambda", "drift penalty toward the previous task's weights");
  visit("k", &EngineConfig::k, "--k", "units added per hidden layer by dynamic expansion");
  visit("tau", &EngineConfig::tau, "--tau", "expand when the validation loss after selective retraining exceeds tau");
  visit("sigma", &EngineConfig::sigma, "--sigma", "split units whose incoming weights drifted by more than sigma (L2)");
  visit("max_splits_per_layer", &EngineConfig::max_splits_per_layer, "--max-splits",
        "most units split per layer per task (-1 = k)");
  visit("split_policy", &EngineConfig::split_policy, "--split-policy", "always (paper) or after-expansion (released code)");
  visit("loss", &EngineConfig::loss, "--loss", "head loss: softmax (cross-entropy) or sigmoid (per-output BCE)");
  visit("prox_scale_by_lr", &EngineConfig::prox_scale_by_lr, "--prox-scale-lr", "scale prox thresholds by the learning rate");
  visit("freeze_existing", &EngineConfig::freeze_existing, "--freeze-existing",
        "grow only: skip selective retraining and splits, so earlier tasks never change");
  visit("prune_to_fixpoint", &EngineConfig::prune_to_fixpoint, "--prune-fixpoint",
        "after expansion, drop new units with a zero incoming group or zero outgoing weights, until none is left");
  visit("reset_zeroed_moments", &EngineConfig::reset_zeroed_moments, "--reset-zeroed-moments",
        "rows the group prox zeroed lose their Adam momentum");
  visit("eval_every", &EngineConfig::eval_every, "--eval-every", "iterations between validation evaluations");
  visit("early_stop_window", &EngineConfig::early_stop_window, "", "validation evaluations in early stopping's moving mean");
  visit("early_stop_tol", &EngineConfig::early_stop_tol, "",
        "stop when the moving mean of the validation loss changes by less than this");
  visit("early_stop_patience", &EngineConfig::early_stop_patience, "--early-stop-patience",
        "evaluations without improvement after which a phase stops and returns to its best state (0 = off)");
  visit("early_stop_min_delta", &EngineConfig::early_stop_min_delta, "--early-stop-min-delta",
        "with patience: the relative improvement of the validation loss that counts");
  visit("max_eval_samples", &EngineConfig::max_eval_samples, "", "validation samples used for early stopping (all if fewer)");
  visit("seed", &EngineConfig::seed, "--seed", "random seed of the training");
  visit("device", &EngineConfig::device, "--device", "cpu, or cuda[:N] with a CUDA LibTorch and a GPU");
}

}  // namespace den::engine
