#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace den::graph {

/// How a unit came to exist.
enum class Origin : uint8_t {
  Initial,   ///< part of the network built for the first task
  Expanded,  ///< added by dynamic expansion
  Split,     ///< a copy made by split/duplication of a drifted unit
  Imported,  ///< a layer of a model trained elsewhere (io::import_torchscript), born at stage 1
};

std::string to_string(Origin origin);

/// One hidden unit. Positions (indices into a layer) change when units are removed; `id` never does.
struct Unit {
  int64_t id = -1;           ///< unique and stable across the whole network's life
  int64_t birth_stage = 1;   ///< task at which the unit was born (timestamp, 1-based)
  Origin origin = Origin::Initial;
  int64_t split_from = -1;   ///< id of the unit this one was copied from (Origin::Split), else -1
  bool alive = true;         ///< false once pruned (only kept in the lineage record)
};

/// One task's output head.
struct Head {
  int64_t task = 0;         ///< 1-based task id
  int64_t num_outputs = 0;
};

/// The colour of birth stage `stage` in Graphviz's set38 scheme (1..8; later stages wrap around),
/// so that every picture of a network colours a stage alike.
int graphviz_stage_color(int64_t stage);

/// The structure of a DEN network: hidden layers of units with birth stage, origin and lineage,
/// and one head per task. It holds no weights; the engine keeps tensors whose rows are in the same
/// order as `units(l)` and updates both together.
class UnitGraph {
 public:
  /// `hidden_sizes[l]` units in hidden layer l (0-based), all born at stage 1 with `origin`
  /// (Initial or Imported). Throws std::invalid_argument for input_dim < 1, no layers, a layer of
  /// size < 1, or another origin.
  UnitGraph(int64_t input_dim, const std::vector<int64_t>& hidden_sizes, Origin origin = Origin::Initial);

  int64_t input_dim() const { return input_dim_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  /// Number of live units in hidden layer `layer`.
  int64_t layer_size(int64_t layer) const;
  std::vector<int64_t> layer_sizes() const;

  /// Live units of `layer`, in tensor-row order.
  const std::vector<Unit>& units(int64_t layer) const;
  const Unit& unit(int64_t layer, int64_t position) const;

  /// Appends `count` units born at `stage` to `layer`; returns the position of the first.
  int64_t add_units(int64_t layer, int64_t count, int64_t stage, Origin origin);

  /// Appends a copy of the unit at `position` (Origin::Split, split_from = its id, born at `stage`);
  /// returns the copy's position.
  int64_t split_unit(int64_t layer, int64_t position, int64_t stage);

  /// Removes the units at `positions` (any order, no duplicates) from `layer`; later units move
  /// down. Removed units are kept, marked dead, in `removed_units()` for the lineage.
  void remove_units(int64_t layer, std::vector<int64_t> positions);

  /// Registers the head of task `task` (must be num_heads() + 1) with `num_outputs` outputs.
  void add_head(int64_t task, int64_t num_outputs);
  int64_t num_heads() const { return static_cast<int64_t>(heads_.size()); }
  /// Head of 1-based task id `task`; throws std::out_of_range for an unknown task.
  const Head& head(int64_t task) const;

  /// Positions of units in `layer` that task `stage` uses: alive and born at a stage <= `stage`.
  std::vector<int64_t> visible_units(int64_t layer, int64_t stage) const;
  /// Positions of units in `layer` born exactly at `stage`.
  std::vector<int64_t> units_born_at(int64_t layer, int64_t stage) const;

  /// Pruned units with the layer they were in, for lineage reports.
  const std::vector<std::pair<int64_t, Unit>>& removed_units() const { return removed_; }

  /// Rebuilds a graph from its stored parts (a checkpoint): the live units of every layer in
  /// tensor-row order, the heads in task order, the pruned units with their layers, and the next
  /// unit id. Throws std::invalid_argument naming the first inconsistency: input_dim < 1, no layers
  /// or an empty layer, a duplicate or out-of-range id (ids must be < next_id), a birth stage
  /// outside 1..max(1, heads), a live unit marked dead or a pruned one marked alive, a split copy
  /// whose source id is unknown or not older, split_from set on a unit that is no copy, heads out of
  /// task order or with no outputs.
  static UnitGraph restore(int64_t input_dim, std::vector<std::vector<Unit>> layers, std::vector<Head> heads,
                           std::vector<std::pair<int64_t, Unit>> removed, int64_t next_id);

  /// The id the next unit created will get (ids are never reused).
  int64_t next_id() const { return next_id_; }
  /// The heads in task order.
  const std::vector<Head>& heads() const { return heads_; }

  /// Writes the network as a Graphviz DOT graph (boost::write_graphviz): one vertex per input
  /// block, hidden unit and head, clustered by layer, colored by birth stage; split lineage drawn
  /// as dashed edges. Edges between layers are summarized (not one per weight).
  void write_graphviz(std::ostream& out) const;

 private:
  explicit UnitGraph(int64_t input_dim) : input_dim_(input_dim) {}  // for restore()
  void check_layer(int64_t layer) const;

  int64_t input_dim_;
  int64_t next_id_ = 0;
  std::vector<std::vector<Unit>> layers_;
  std::vector<Head> heads_;
  std::vector<std::pair<int64_t, Unit>> removed_;
};

}  // namespace den::graph
