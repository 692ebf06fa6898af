#include "serialization/internal/report_proto.h"

#include <stdexcept>
#include <type_traits>

namespace den::io::internal {

namespace {

namespace gp = google::protobuf;

template <typename T>
struct VectorOf : std::false_type {};
template <typename T>
struct VectorOf<std::vector<T>> : std::true_type {
  using Element = T;
};

/// Whether T is a report type with a table of its own (stored as a nested message).
template <typename T>
constexpr bool kHasTable = std::is_same_v<T, engine::PhaseResult> || std::is_same_v<T, engine::SplitPair>;

/// The proto field that holds a T: its C++ type and whether it repeats.
template <typename T>
std::pair<gp::FieldDescriptor::CppType, bool> proto_type() {
  if constexpr (std::is_same_v<T, int64_t>) {
    return {gp::FieldDescriptor::CPPTYPE_INT64, false};
  } else if constexpr (std::is_same_v<T, double>) {
    return {gp::FieldDescriptor::CPPTYPE_DOUBLE, false};
  } else if constexpr (std::is_same_v<T, bool>) {
    return {gp::FieldDescriptor::CPPTYPE_BOOL, false};
  } else if constexpr (std::is_same_v<T, std::string>) {
    return {gp::FieldDescriptor::CPPTYPE_STRING, false};
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    return {gp::FieldDescriptor::CPPTYPE_INT64, true};
  } else {
    static_assert(VectorOf<T>::value && kHasTable<typename VectorOf<T>::Element>, "a report field of unknown type");
    return {gp::FieldDescriptor::CPPTYPE_MESSAGE, true};
  }
}

std::string problem(const gp::Descriptor& message, const std::string& name, gp::FieldDescriptor::CppType type,
                    bool repeated) {
  const gp::FieldDescriptor* f = message.FindFieldByName(name);
  const std::string what = "report field '" + name + "': ";
  if (f == nullptr) return what + "no field of that name in message " + message.full_name();
  if (f->cpp_type() != type || f->is_repeated() != repeated) {
    return what + "field " + f->full_name() + " is a " + (f->is_repeated() ? "repeated " : "") + f->cpp_type_name() +
           ", the report's a " + (repeated ? "repeated " : "") + gp::FieldDescriptor::CppTypeName(type);
  }
  return "";
}

template <typename S>
void write_fields(const S& s, gp::Message& m);
template <typename S>
void read_fields(const gp::Message& m, S& s);

/// A graph::Subnetwork is two fields: `<name>_inputs` and `<name>_hidden` (Positions per layer).
void write_subnetwork(const graph::Subnetwork& v, const std::string& name, gp::Message& m) {
  const gp::Reflection& r = *m.GetReflection();
  const gp::Descriptor& d = *m.GetDescriptor();
  for (int64_t x : v.inputs) r.AddInt64(&m, d.FindFieldByName(name + "_inputs"), x);
  for (const std::vector<int64_t>& layer : v.hidden) {
    gp::Message* positions = r.AddMessage(&m, d.FindFieldByName(name + "_hidden"));
    const gp::FieldDescriptor* f = positions->GetDescriptor()->FindFieldByName("positions");
    for (int64_t x : layer) positions->GetReflection()->AddInt64(positions, f, x);
  }
}

graph::Subnetwork read_subnetwork(const gp::Message& m, const std::string& name) {
  const gp::Reflection& r = *m.GetReflection();
  const gp::Descriptor& d = *m.GetDescriptor();
  graph::Subnetwork v;
  const gp::FieldDescriptor* inputs = d.FindFieldByName(name + "_inputs");
  for (int i = 0; i < r.FieldSize(m, inputs); ++i) v.inputs.push_back(r.GetRepeatedInt64(m, inputs, i));
  const gp::FieldDescriptor* hidden = d.FindFieldByName(name + "_hidden");
  for (int i = 0; i < r.FieldSize(m, hidden); ++i) {
    const gp::Message& positions = r.GetRepeatedMessage(m, hidden, i);
    const gp::FieldDescriptor* f = positions.GetDescriptor()->FindFieldByName("positions");
    std::vector<int64_t> layer;
    for (int j = 0; j < positions.GetReflection()->FieldSize(positions, f); ++j) {
      layer.push_back(positions.GetReflection()->GetRepeatedInt64(positions, f, j));
    }
    v.hidden.push_back(std::move(layer));
  }
  return v;
}

template <typename T>
void write_value(const T& v, const std::string& name, gp::Message& m) {
  if constexpr (std::is_same_v<T, graph::Subnetwork>) {
    write_subnetwork(v, name, m);
  } else {
    const gp::Reflection& r = *m.GetReflection();
    const gp::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if constexpr (std::is_same_v<T, int64_t>) {
      r.SetInt64(&m, f, v);
    } else if constexpr (std::is_same_v<T, double>) {
      r.SetDouble(&m, f, v);
    } else if constexpr (std::is_same_v<T, bool>) {
      r.SetBool(&m, f, v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      r.SetString(&m, f, v);
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      for (int64_t x : v) r.AddInt64(&m, f, x);
    } else {
      for (const auto& element : v) write_fields(element, *r.AddMessage(&m, f));
    }
  }
}

template <typename T>
void read_value(const gp::Message& m, const std::string& name, T& v) {
  if constexpr (std::is_same_v<T, graph::Subnetwork>) {
    v = read_subnetwork(m, name);
  } else {
    const gp::Reflection& r = *m.GetReflection();
    const gp::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if constexpr (std::is_same_v<T, int64_t>) {
      v = r.GetInt64(m, f);
    } else if constexpr (std::is_same_v<T, double>) {
      v = r.GetDouble(m, f);
    } else if constexpr (std::is_same_v<T, bool>) {
      v = r.GetBool(m, f);
    } else if constexpr (std::is_same_v<T, std::string>) {
      v = r.GetString(m, f);
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      v.clear();
      for (int i = 0; i < r.FieldSize(m, f); ++i) v.push_back(r.GetRepeatedInt64(m, f, i));
    } else {
      v.clear();
      for (int i = 0; i < r.FieldSize(m, f); ++i) read_fields(r.GetRepeatedMessage(m, f, i), v.emplace_back());
    }
  }
}

template <typename S>
void write_fields(const S& s, gp::Message& m) {
  engine::visit_report_fields(static_cast<const S*>(nullptr), [&](const auto& field) {
    if (field.checkpointed) write_value(s.*field.member, field.name, m);
  });
}

template <typename S>
void read_fields(const gp::Message& m, S& s) {
  engine::visit_report_fields(static_cast<const S*>(nullptr), [&](const auto& field) {
    if (field.checkpointed) read_value(m, field.name, s.*field.member);
  });
}

void check_schema() {
  static const bool ok = [] {
    std::vector<std::string> problems = report_field_problems<engine::TaskReport>(*pb::TaskRecord::descriptor());
    for (auto more : {report_field_problems<engine::PhaseResult>(*pb::Phase::descriptor()),
                      report_field_problems<engine::SplitPair>(*pb::SplitPair::descriptor())}) {
      problems.insert(problems.end(), more.begin(), more.end());
    }
    if (!problems.empty()) throw std::logic_error("den.proto does not match the report tables: " + problems[0]);
    return true;
  }();
  (void)ok;
}

}  // namespace

template <typename S>
std::vector<std::string> report_field_problems(const gp::Descriptor& message) {
  std::vector<std::string> problems;
  engine::visit_report_fields(static_cast<const S*>(nullptr), [&](const auto& field) {
    using T = typename std::decay_t<decltype(field)>::Value;
    if (!field.checkpointed) return;
    std::string p;
    if constexpr (std::is_same_v<T, graph::Subnetwork>) {
      p = problem(message, std::string(field.name) + "_inputs", gp::FieldDescriptor::CPPTYPE_INT64, true);
      if (p.empty()) p = problem(message, std::string(field.name) + "_hidden", gp::FieldDescriptor::CPPTYPE_MESSAGE, true);
    } else {
      const auto [type, repeated] = proto_type<T>();
      p = problem(message, field.name, type, repeated);
    }
    if (!p.empty()) problems.push_back(std::move(p));
  });
  return problems;
}

template std::vector<std::string> report_field_problems<engine::TaskReport>(const gp::Descriptor&);
template std::vector<std::string> report_field_problems<engine::PhaseResult>(const gp::Descriptor&);
template std::vector<std::string> report_field_problems<engine::SplitPair>(const gp::Descriptor&);

void report_to_pb(const engine::TaskReport& report, pb::TaskRecord& message) {
  check_schema();
  write_fields(report, message);
}

engine::TaskReport report_from_pb(const pb::TaskRecord& message) {
  check_schema();
  engine::TaskReport report;
  read_fields(message, report);
  return report;
}

}  // namespace den::io::internal
