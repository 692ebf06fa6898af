#include "data/csv_reader.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>

namespace den::data {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Parses a whole field as a float; false if any character is left over or nothing parses.
bool parse_float(std::string_view field, float& value) {
  field = trim(field);
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);  // from_chars rejects a '+' sign
  if (field.empty()) return false;
  const auto res = std::from_chars(field.data(), field.data() + field.size(), value);
  return res.ec == std::errc() && res.ptr == field.data() + field.size();
}

/// Splits `line` at `delim` into `fields` (reusing its storage).
void split(std::string_view line, char delim, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  while (true) {
    const size_t pos = line.find(delim, start);
    if (pos == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return;
    }
    fields.push_back(line.substr(start, pos - start));
    start = pos + 1;
  }
}

bool is_blank(std::string_view line) { return trim(line).empty(); }

}  // namespace

Dataset load_csv(const std::string& path, const CsvOptions& options) {
  const std::string text = read_input_file(path, "CSV file");

  auto where = [&](int64_t line_no, size_t col) {
    return "'" + path + "' line " + std::to_string(line_no) + " column " + std::to_string(col + 1);
  };

  std::vector<std::string_view> fields;
  std::vector<float> features;
  std::vector<int64_t> labels;
  size_t num_cols = 0;
  size_t label_col = 0;
  bool first = true;
  int64_t max_label = -1;
  int64_t line_no = 0;
  int64_t rows = 0;

  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (is_blank(line)) continue;
    split(line, options.delimiter, fields);

    if (first) {
      first = false;
      num_cols = fields.size();
      if (options.labelled && num_cols < 2) {
        throw DataError("'" + path + "' line " + std::to_string(line_no) + " has " + std::to_string(num_cols) +
                        " column; a CSV data set needs a label and at least one feature");
      }
      const int64_t lc = options.label_column < 0 ? static_cast<int64_t>(num_cols) - 1 : options.label_column;
      if (options.labelled && (options.label_column < -1 || lc >= static_cast<int64_t>(num_cols))) {
        throw DataError("'" + path + "': label column " + std::to_string(options.label_column) + " is outside the " +
                        std::to_string(num_cols) + " columns");
      }
      label_col = options.labelled ? static_cast<size_t>(lc) : num_cols;  // num_cols: no label column
      // NOTE: [csv header] A first line is a header only when none of its fields is a number: a
      // data line with one bad field must be reported, not dropped as a header.
      size_t numeric = 0;
      size_t first_text = num_cols;
      float unused;
      for (size_t c = 0; c < num_cols; ++c) {
        if (parse_float(fields[c], unused)) {
          ++numeric;
        } else if (first_text == num_cols) {
          first_text = c;
        }
      }
      if (numeric == 0) continue;  // a header line
      if (numeric < num_cols) {
        throw DataError(where(line_no, first_text) + ": '" + std::string(trim(fields[first_text])) +
                        "' is not a number, yet " + std::to_string(numeric) + " of the line's " +
                        std::to_string(num_cols) +
                        " fields are: a header line has no numeric field, a data line only numbers");
      }
    }

    if (fields.size() != num_cols) {
      throw DataError("'" + path + "' line " + std::to_string(line_no) + " has " + std::to_string(fields.size()) +
                      " columns, expected " + std::to_string(num_cols));
    }
    ++rows;
    for (size_t c = 0; c < num_cols; ++c) {
      float v;
      if (!parse_float(fields[c], v)) {
        throw DataError(where(line_no, c) + ": '" + std::string(trim(fields[c])) + "' is not a number");
      }
      if (!std::isfinite(v)) {
        throw DataError(where(line_no, c) + ": value '" + std::string(trim(fields[c])) + "' is not finite");
      }
      if (c == label_col) {
        // Labels up to 2^24 are exact in float; anything larger is not a class index.
        if (v < 0 || v != std::floor(v)) {
          throw DataError(where(line_no, c) + ": label '" + std::string(trim(fields[c])) +
                          "' is not a non-negative integer");
        }
        if (v >= 16777216.0f) {
          throw DataError(where(line_no, c) + ": label '" + std::string(trim(fields[c])) +
                          "' is above the largest class id den reads from CSV, 16777215 (2^24 - 1, exact as float)");
        }
        const auto label = static_cast<int64_t>(v);
        if (options.num_classes > 0 && label >= options.num_classes) {
          throw DataError(where(line_no, c) + ": label " + std::to_string(label) + " is not below num_classes " +
                          std::to_string(options.num_classes));
        }
        max_label = std::max(max_label, label);
        labels.push_back(label);
      } else {
        features.push_back(v);
      }
    }
  }
  if (rows == 0) throw DataError("CSV file '" + path + "' holds no samples");

  const int64_t n = rows;
  const auto d = static_cast<int64_t>(num_cols) - (options.labelled ? 1 : 0);
  Dataset ds;
  ds.features = at::from_blob(features.data(), {n, d}, at::kFloat).clone();
  if (options.labelled) {
    ds.labels = at::from_blob(labels.data(), {n}, at::kLong).clone();
    ds.num_classes = options.num_classes > 0 ? options.num_classes : max_label + 1;
  }
  ds.sample_shape = {d};
  return ds;
}

}  // namespace den::data
