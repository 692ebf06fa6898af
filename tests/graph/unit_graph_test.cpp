#include "graph/unit_graph.h"

#include <gtest/gtest.h>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::graph {
namespace {

using Ids = std::vector<int64_t>;

Ids ids_of(const UnitGraph& g, int64_t layer) {
  Ids out;
  for (const Unit& u : g.units(layer)) out.push_back(u.id);
  return out;
}

TEST(UnitGraphTest, ConstructorCreatesInitialUnitsWithUniqueIds) {
  UnitGraph g(784, {3, 2});
  EXPECT_EQ(g.input_dim(), 784);
  EXPECT_EQ(g.num_layers(), 2);
  EXPECT_EQ(g.layer_sizes(), (Ids{3, 2}));
  EXPECT_EQ(g.layer_size(1), 2);
  std::set<int64_t> ids;
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (const Unit& u : g.units(l)) {
      EXPECT_EQ(u.birth_stage, 1);
      EXPECT_EQ(u.origin, Origin::Initial);
      EXPECT_EQ(u.split_from, -1);
      EXPECT_TRUE(u.alive);
      ids.insert(u.id);
    }
  }
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(g.num_heads(), 0);
}

TEST(UnitGraphTest, ConstructorRejectsInvalidShapes) {
  EXPECT_THROW(UnitGraph(0, {3}), std::invalid_argument);
  EXPECT_THROW(UnitGraph(4, {}), std::invalid_argument);
  EXPECT_THROW(UnitGraph(4, {3, 0}), std::invalid_argument);
}

TEST(UnitGraphTest, AddUnitsAppendsWithStageAndOrigin) {
  UnitGraph g(10, {3, 2});
  const int64_t first = g.add_units(0, 4, 2, Origin::Expanded);
  EXPECT_EQ(first, 3);
  EXPECT_EQ(g.layer_size(0), 7);
  EXPECT_EQ(g.layer_size(1), 2);
  for (int64_t p = 3; p < 7; ++p) {
    EXPECT_EQ(g.unit(0, p).birth_stage, 2);
    EXPECT_EQ(g.unit(0, p).origin, Origin::Expanded);
  }
  EXPECT_EQ(g.units_born_at(0, 2), (Ids{3, 4, 5, 6}));
  EXPECT_EQ(g.units_born_at(0, 1), (Ids{0, 1, 2}));
  EXPECT_TRUE(g.units_born_at(1, 2).empty());
  // Ids keep growing across layers: the new ones are larger than every earlier id.
  EXPECT_GT(g.unit(0, 3).id, g.unit(1, 1).id);
  EXPECT_EQ(g.add_units(1, 0, 2, Origin::Expanded), 2);  // zero units: a no-op
}

TEST(UnitGraphTest, AddUnitsRejectsInvalidArguments) {
  UnitGraph g(10, {3});
  EXPECT_THROW(g.add_units(1, 1, 2, Origin::Expanded), std::out_of_range);
  EXPECT_THROW(g.add_units(-1, 1, 2, Origin::Expanded), std::out_of_range);
  EXPECT_THROW(g.add_units(0, -1, 2, Origin::Expanded), std::invalid_argument);
  EXPECT_THROW(g.add_units(0, 1, 0, Origin::Expanded), std::invalid_argument);
  EXPECT_THROW(g.add_units(0, 1, 2, Origin::Split), std::invalid_argument);
  EXPECT_EQ(g.layer_size(0), 3);
}

TEST(UnitGraphTest, SplitUnitRecordsLineage) {
  UnitGraph g(10, {3, 2});
  const int64_t source_id = g.unit(1, 1).id;
  const int64_t pos = g.split_unit(1, 1, 3);
  EXPECT_EQ(pos, 2);
  const Unit& copy = g.unit(1, pos);
  EXPECT_EQ(copy.origin, Origin::Split);
  EXPECT_EQ(copy.split_from, source_id);
  EXPECT_EQ(copy.birth_stage, 3);
  EXPECT_TRUE(copy.alive);
  EXPECT_NE(copy.id, source_id);
  // The source keeps its own stamp.
  EXPECT_EQ(g.unit(1, 1).birth_stage, 1);
  EXPECT_EQ(g.unit(1, 1).origin, Origin::Initial);

  EXPECT_THROW(g.split_unit(1, 5, 3), std::out_of_range);
  EXPECT_THROW(g.split_unit(1, -1, 3), std::out_of_range);
  EXPECT_THROW(g.split_unit(1, 0, 0), std::invalid_argument);
  EXPECT_THROW(g.split_unit(1, pos, 2), std::invalid_argument);  // before the copy's birth
}

TEST(UnitGraphTest, RemoveUnitsCompactsPositionsAndKeepsIds) {
  UnitGraph g(10, {6});
  const Ids before = ids_of(g, 0);
  g.remove_units(0, {4, 1});  // any order
  EXPECT_EQ(g.layer_size(0), 4);
  EXPECT_EQ(ids_of(g, 0), (Ids{before[0], before[2], before[3], before[5]}));
  ASSERT_EQ(g.removed_units().size(), 2u);
  std::set<int64_t> removed_ids;
  for (const auto& [layer, u] : g.removed_units()) {
    EXPECT_EQ(layer, 0);
    EXPECT_FALSE(u.alive);
    removed_ids.insert(u.id);
  }
  EXPECT_EQ(removed_ids, (std::set<int64_t>{before[1], before[4]}));
  for (const Unit& u : g.units(0)) EXPECT_TRUE(u.alive);

  // New ids never reuse removed ones.
  g.add_units(0, 1, 2, Origin::Expanded);
  EXPECT_EQ(removed_ids.count(g.unit(0, 4).id), 0u);
}

TEST(UnitGraphTest, RemoveUnitsRejectsInvalidPositionsWithoutChanges) {
  UnitGraph g(10, {4});
  EXPECT_THROW(g.remove_units(0, {1, 4}), std::out_of_range);
  EXPECT_THROW(g.remove_units(0, {-1}), std::out_of_range);
  EXPECT_THROW(g.remove_units(0, {2, 2}), std::invalid_argument);
  EXPECT_THROW(g.remove_units(3, {0}), std::out_of_range);
  EXPECT_EQ(g.layer_size(0), 4);
  EXPECT_TRUE(g.removed_units().empty());
}

TEST(UnitGraphTest, VisibleUnitsFollowBirthStages) {
  UnitGraph g(10, {2, 2});
  g.add_units(0, 2, 2, Origin::Expanded);  // positions 2, 3
  g.split_unit(0, 0, 3);                    // position 4
  g.add_units(0, 1, 3, Origin::Expanded);  // position 5
  EXPECT_EQ(g.visible_units(0, 1), (Ids{0, 1}));
  EXPECT_EQ(g.visible_units(0, 2), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(g.visible_units(0, 3), (Ids{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(g.visible_units(1, 3), (Ids{0, 1}));
  g.remove_units(0, {2});
  EXPECT_EQ(g.visible_units(0, 2), (Ids{0, 1, 2}));
  EXPECT_EQ(g.units_born_at(0, 3), (Ids{3, 4}));
  EXPECT_THROW(g.visible_units(2, 1), std::out_of_range);
}

TEST(UnitGraphTest, HeadsAreSequential) {
  UnitGraph g(10, {2});
  EXPECT_THROW(g.head(1), std::out_of_range);
  g.add_head(1, 10);
  g.add_head(2, 3);
  EXPECT_EQ(g.num_heads(), 2);
  EXPECT_EQ(g.head(1).num_outputs, 10);
  EXPECT_EQ(g.head(2).task, 2);
  EXPECT_EQ(g.head(2).num_outputs, 3);
  EXPECT_THROW(g.add_head(4, 2), std::invalid_argument);  // skips task 3
  EXPECT_THROW(g.add_head(2, 2), std::invalid_argument);  // already registered
  EXPECT_THROW(g.add_head(3, 0), std::invalid_argument);
  EXPECT_THROW(g.head(0), std::out_of_range);
  EXPECT_THROW(g.head(3), std::out_of_range);
  EXPECT_EQ(g.num_heads(), 2);
}

TEST(UnitGraphTest, UnitAccessorsCheckRanges) {
  UnitGraph g(10, {2});
  EXPECT_THROW(g.unit(0, 2), std::out_of_range);
  EXPECT_THROW(g.unit(1, 0), std::out_of_range);
  EXPECT_THROW(g.units(-1), std::out_of_range);
  EXPECT_THROW(g.layer_size(1), std::out_of_range);
}

TEST(UnitGraphTest, OriginNames) {
  EXPECT_EQ(to_string(Origin::Initial), "initial");
  EXPECT_EQ(to_string(Origin::Expanded), "expanded");
  EXPECT_EQ(to_string(Origin::Split), "split");
}

struct ParsedVertex {
  std::string name;
  std::string label;
};
struct ParsedEdge {
  std::string style;
};
using ParsedGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, ParsedVertex, ParsedEdge>;

TEST(UnitGraphTest, GraphvizOutputParsesBack) {
  UnitGraph g(784, {3, 2});
  g.add_head(1, 10);
  g.add_units(0, 2, 2, Origin::Expanded);
  g.split_unit(1, 0, 2);
  g.remove_units(0, {1});
  g.add_head(2, 2);

  std::ostringstream dot;
  g.write_graphviz(dot);
  const std::string text = dot.str();
  EXPECT_EQ(text.rfind("digraph", 0), 0u) << text;
  EXPECT_NE(text.find("subgraph cluster_0"), std::string::npos);
  EXPECT_NE(text.find("subgraph cluster_1"), std::string::npos);

  ParsedGraph parsed;
  boost::dynamic_properties dp(boost::ignore_other_properties);
  dp.property("node_id", boost::get(&ParsedVertex::name, parsed));
  dp.property("label", boost::get(&ParsedVertex::label, parsed));
  dp.property("style", boost::get(&ParsedEdge::style, parsed));
  ASSERT_TRUE(boost::read_graphviz(text, parsed, dp, "node_id")) << text;

  // input block + (4 + 3) live hidden units + 2 heads.
  EXPECT_EQ(boost::num_vertices(parsed), 1u + 4u + 3u + 2u) << text;
  // First line of every label (lines are separated by DOT's "\n" escape).
  std::set<std::string> first_lines;
  for (auto v : boost::make_iterator_range(boost::vertices(parsed))) {
    const std::string& label = parsed[v].label;
    first_lines.insert(label.substr(0, label.find_first_of("\\\n")));
  }
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (const Unit& u : g.units(l)) {
      EXPECT_EQ(first_lines.count("u" + std::to_string(u.id)), 1u) << "no vertex for unit " << u.id << "\n" << text;
    }
  }
  EXPECT_EQ(first_lines.count("u" + std::to_string(g.removed_units().front().second.id)), 0u) << text;

  // Summaries: input->L0, L0->L1, L1->head1, L1->head2, and one dashed split edge.
  EXPECT_EQ(boost::num_edges(parsed), 5u) << text;
  int dashed = 0;
  for (auto e : boost::make_iterator_range(boost::edges(parsed))) dashed += parsed[e].style == "dashed";
  EXPECT_EQ(dashed, 1);
}

}  // namespace
}  // namespace den::graph

namespace den::graph {
namespace {

TEST(UnitGraphTest, AnImportedBaseNetworkHasImportedUnitsThatSplitAndRestore) {
  UnitGraph g(6, {3, 2}, Origin::Imported);
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (const Unit& u : g.units(l)) {
      EXPECT_EQ(u.origin, Origin::Imported);
      EXPECT_EQ(u.birth_stage, 1);
    }
  }
  EXPECT_EQ(to_string(Origin::Imported), "imported");
  g.add_head(1, 2);
  g.add_head(2, 2);
  const int64_t copy = g.split_unit(0, 1, 2);
  EXPECT_EQ(g.unit(0, copy).split_from, g.unit(0, 1).id);
  const UnitGraph back = UnitGraph::restore(6, {g.units(0), g.units(1)}, g.heads(), {}, g.next_id());
  EXPECT_EQ(back.unit(0, 0).origin, Origin::Imported);
  EXPECT_THROW(UnitGraph(6, {3}, Origin::Expanded), std::invalid_argument);
  EXPECT_THROW(UnitGraph(6, {3}, Origin::Split), std::invalid_argument);
}

}  // namespace
}  // namespace den::graph
