// The hyperparameter table (engine/hyperparameters.h) describes every field of EngineConfig once.

#include "engine/hyperparameters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace den::engine {
namespace {

size_t align_up(size_t offset, size_t alignment) { return (offset + alignment - 1) / alignment * alignment; }

// The visited fields tile EngineConfig with nothing between them but alignment padding, so a field
// added to EngineConfig and not to the table leaves a gap and fails here.
TEST(Hyperparameters, TheTableCoversEveryFieldOfEngineConfigOnce) {
  struct Span {
    size_t offset, size, alignment;
    std::string name;
  };
  const EngineConfig c;
  std::vector<Span> spans;
  std::set<std::string> names, flags;
  visit_hyperparameters([&](const auto& h) {
    using Field = typename std::decay_t<decltype(h)>::Value;
    const auto offset = static_cast<size_t>(reinterpret_cast<const char*>(&h.value(c)) - reinterpret_cast<const char*>(&c));
    spans.push_back({offset, sizeof(Field), alignof(Field), h.name});
    EXPECT_TRUE(names.insert(h.name).second) << "two entries named " << h.name;
    if (*h.flag != '\0') {
      EXPECT_TRUE(flags.insert(h.flag).second) << "two entries with flag " << h.flag;
    }
    EXPECT_GT(std::strlen(h.help), 0u) << h.name;
  });
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
  size_t end = 0;
  for (const Span& s : spans) {
    EXPECT_EQ(s.offset, align_up(end, s.alignment))
        << "bytes " << end << ".." << s.offset << " before '" << s.name
        << "' hold a field of EngineConfig that visit_hyperparameters does not list";
    end = s.offset + s.size;
  }
  EXPECT_EQ(sizeof(EngineConfig), align_up(end, alignof(EngineConfig)))
      << "EngineConfig ends with a field that visit_hyperparameters does not list";
}

TEST(Hyperparameters, FlagsAreTheCommandLinesSpelling) {
  visit_hyperparameters([&](const auto& h) {
    const std::string f = h.flag;
    if (f.empty()) return;
    EXPECT_EQ(f.rfind("--", 0), 0u) << h.name;
    EXPECT_EQ(f.find('_'), std::string::npos) << h.name << ": flags use dashes";
  });
}

// Every default obeys its rule, and the rules are what validate() enforces: a value the rule
// refuses is refused by validate() with the field's name.
TEST(Hyperparameters, DefaultsAreValidAndValidateEnforcesEachRule) {
  EXPECT_NO_THROW(EngineConfig().validate());
  int rules = 0;
  visit_hyperparameters([&](const auto& h) {
    const EngineConfig defaults;
    EXPECT_TRUE(h.valid(h.value(defaults))) << h.name;
    if (h.rule.ok == nullptr) return;
    ++rules;
    EXPECT_GT(std::strlen(h.rule.text), 0u) << h.name;
  });
  EXPECT_GT(rules, 10);
  try {
    EngineConfig().set_mu(-1).validate();
    ADD_FAILURE() << "mu = -1 passed validate()";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("mu = -1: must be >= 0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(EngineConfig().set_hidden({}).validate(), std::invalid_argument);
  EXPECT_THROW(EngineConfig().set_lr(std::nan("")).validate(), std::invalid_argument);
}

// The text form reads back to the same value for every field's default (flags, config files and
// the resume check compare texts).
TEST(Hyperparameters, TextFormReadsBack) {
  const EngineConfig defaults;
  visit_hyperparameters([&](const auto& h) {
    typename std::decay_t<decltype(h)>::Value back{};
    from_text(to_text(h.value(defaults)), back);
    EXPECT_TRUE(back == h.value(defaults)) << h.name << " = " << to_text(h.value(defaults));
  });
  EXPECT_EQ(to_text(0.001), "0.001");
  EXPECT_EQ(to_text(1e-5), "1e-05");
  EXPECT_EQ(to_text(0.1 + 0.2), "0.30000000000000004");
  std::vector<int64_t> hidden;
  EXPECT_THROW(from_text("312,x", hidden), std::invalid_argument);
  uint64_t seed = 0;
  EXPECT_THROW(from_text("-1", seed), std::invalid_argument);
  LossKind loss{};
  EXPECT_THROW(from_text("hinge", loss), std::invalid_argument);
}

}  // namespace
}  // namespace den::engine
