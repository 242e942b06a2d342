// The examples' files a user keeps: checkpoints (versioned named fields, durable writes,
// corrupted files refused in one line) and results files (names escaped in JSON, quoted in CSV).

#include "support/experiment.hpp"
#include "support/fixtures.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/wait.h>

using Catch::Contains;

namespace {

rar::examples::NetConfig small_config() {
  rar::examples::NetConfig config;
  config.conv1 = 3, config.conv2 = 4, config.fc = 8;
  return config;
}

rar::examples::Net saved_net(const std::string& path, torch::ScalarType dtype = torch::kFloat) {
  torch::manual_seed(11);
  rar::examples::Net net(small_config());
  net->to(dtype);
  rar::examples::save_checkpoint(path, net, nullptr, 5);
  return net;
}

bool same_parameters(rar::examples::Net& a, rar::examples::Net& b) {
  const auto pa = a->parameters(), pb = b->parameters();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i)
    if (!pa[i].equal(pb[i])) return false;
  return true;
}

// The error text of load_model (empty when it loads).
std::string load_error(const std::string& path) {
  try {
    rar::examples::load_model(path);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

int run_code(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  output->clear();
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// --- a small RFC 4180 CSV reader and JSON reader, independent of the writers under test ---

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      REQUIRE(field.empty());  // a quote only opens a field
      quoted = was_quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
      was_quoted = false;
    } else if (c == '\n') {
      rows.back().push_back(field);
      field.clear();
      was_quoted = false;
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  REQUIRE(!quoted);
  if (!field.empty() || was_quoted) rows.back().push_back(field);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

struct Json {
  enum Kind { null, number, string, array, object } kind = null;
  double value = 0;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> fields;
};

struct JsonReader {
  const std::string& s;
  size_t i = 0;
  void space() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  char peek() {
    space();
    REQUIRE(i < s.size());
    return s[i];
  }
  void expect(char c) {
    REQUIRE(peek() == c);
    ++i;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      REQUIRE(i < s.size());
      const char c = s[i++];
      if (c == '"') return out;
      REQUIRE(static_cast<unsigned char>(c) >= 0x20);  // control characters must be escaped
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = s[i++];
      if (e == 'u') {
        out += static_cast<char>(std::stoi(s.substr(i, 4), nullptr, 16));
        i += 4;
      } else {
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
    }
  }
  Json value() {
    Json v;
    const char c = peek();
    if (c == '"') {
      v.kind = Json::string;
      v.text = string();
    } else if (c == '[') {
      v.kind = Json::array;
      ++i;
      if (peek() == ']') return ++i, v;
      while (true) {
        v.items.push_back(value());
        if (peek() == ',') { ++i; continue; }
        expect(']');
        return v;
      }
    } else if (c == '{') {
      v.kind = Json::object;
      ++i;
      if (peek() == '}') return ++i, v;
      while (true) {
        const std::string key = string();
        expect(':');
        v.fields[key] = value();
        if (peek() == ',') { ++i; continue; }
        expect('}');
        return v;
      }
    } else if (s.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      v.kind = Json::number;
      size_t used = 0;
      v.value = std::stod(s.substr(i), &used);
      REQUIRE(used > 0);
      i += used;
    }
    return v;
  }
};

Json parse_json(const std::string& text) {
  JsonReader reader{text};
  Json v = reader.value();
  reader.space();
  REQUIRE(reader.i == text.size());
  return v;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("checkpoints store named fields, the dtype and a format version", "[examples][checkpoint]") {
  TempDir tmp;
  const std::string path = tmp / "net.pt";
  auto net = saved_net(path, torch::kDouble);
  torch::serialize::InputArchive archive, net_fields;
  archive.load_from(path);
  c10::IValue v;
  REQUIRE(archive.try_read("version", v));
  CHECK(v.toInt() == 2);
  REQUIRE(archive.try_read("format", v));
  CHECK(v.toStringRef() == "rar-example-checkpoint");
  REQUIRE(archive.try_read("dtype", v));
  CHECK(v.toStringRef() == "float64");
  REQUIRE(archive.try_read("net", net_fields));
  REQUIRE(net_fields.try_read("arch", v));
  CHECK(v.toStringRef() == "mnist_cnn");
  REQUIRE(net_fields.try_read("conv2", v));
  CHECK(v.toInt() == 4);
  REQUIRE(net_fields.try_read("standardize", v));
  CHECK(v.toBool() == false);
  auto back = rar::examples::load_model(path);
  CHECK(back->parameters()[0].scalar_type() == torch::kDouble);
  CHECK(same_parameters(net, back));
  CHECK(!fs::exists(path + ".tmp"));  // written, synced, renamed
}

TEST_CASE("a version-1 checkpoint (positional net_config) still loads", "[examples][checkpoint]") {
  TempDir tmp;
  torch::manual_seed(12);
  rar::examples::Net net(small_config());
  torch::serialize::OutputArchive archive, model;
  net->save(model);
  archive.write("model", model);
  archive.write("step", torch::tensor(int64_t{3}));
  const auto& c = net->config();
  archive.write("net_config", torch::tensor({0.0, 1.0, 28.0, 10.0, static_cast<double>(c.conv1),
                                             static_cast<double>(c.conv2), static_cast<double>(c.fc),
                                             2.0, 0.0, 0.0},
                                            torch::kDouble));
  archive.save_to(tmp / "v1.pt");
  auto back = rar::examples::load_model(tmp / "v1.pt");
  CHECK(same_parameters(net, back));
}

TEST_CASE("incompatible checkpoints are refused naming the file and the field", "[examples][checkpoint]") {
  TempDir tmp;
  torch::manual_seed(13);
  rar::examples::Net net(small_config());
  using Fields = std::map<std::string, c10::IValue>;
  // A version-2 file whose top-level and net fields are the defaults with `top` and `fields`
  // replacing some of them.
  auto write = [&](const std::string& name, const Fields& top, const Fields& fields) {
    Fields t = {{"format", c10::IValue(std::string("rar-example-checkpoint"))},
                {"version", c10::IValue(int64_t{2})},
                {"dtype", c10::IValue(std::string("float32"))}};
    Fields f = {{"arch", c10::IValue(std::string("mnist_cnn"))}, {"in_channels", c10::IValue(int64_t{1})},
                {"image_size", c10::IValue(int64_t{28})},        {"classes", c10::IValue(int64_t{10})},
                {"conv1", c10::IValue(int64_t{3})},              {"conv2", c10::IValue(int64_t{4})},
                {"fc", c10::IValue(int64_t{8})},                 {"units_per_stage", c10::IValue(int64_t{2})},
                {"leaky_slope", c10::IValue(0.0)},               {"standardize", c10::IValue(false)}};
    for (const auto& [k, v] : top) t[k] = v;
    for (const auto& [k, v] : fields) f[k] = v;
    torch::serialize::OutputArchive archive, model, net_fields;
    net->save(model);
    for (const auto& [k, v] : t) archive.write(k, v);
    for (const auto& [k, v] : f) net_fields.write(k, v);
    archive.write("net", net_fields);
    archive.write("model", model);
    archive.write("step", torch::tensor(int64_t{1}));
    const std::string path = tmp / name;
    archive.save_to(path);
    return path;
  };
  const auto newer = write("newer.pt", {{"version", c10::IValue(int64_t{3})}}, {});
  CHECK_THAT(load_error(newer), Contains(newer + ": checkpoint field 'version' is 3") &&
                                    Contains("a newer rar wrote it"));
  const auto wrong_type = write("type.pt", {}, {{"conv1", c10::IValue(std::string("3"))}});
  CHECK_THAT(load_error(wrong_type), Contains(wrong_type + ": checkpoint field 'net.conv1' is a String"));
  const auto wrong_size = write("size.pt", {}, {{"conv2", c10::IValue(int64_t{5})}});
  CHECK_THAT(load_error(wrong_size), Contains(wrong_size + ": checkpoint field 'model' does not fit the network of field 'net': "
                                                           "parameter 'conv1.weight' has shape [4, 3, 5, 5], "
                                                           "the network needs [5, 3, 5, 5]"));
  const auto bad_dtype = write("dtype.pt", {{"dtype", c10::IValue(std::string("int8"))}}, {});
  CHECK_THAT(load_error(bad_dtype), Contains("checkpoint field 'dtype' is 'int8', expected float32 or float64"));
  const auto no_checksum = write("nosum.pt", {}, {});
  CHECK_THAT(load_error(no_checksum), Contains("checkpoint field 'checksum' is missing"));
  for (const auto& path : {newer, wrong_type, wrong_size, bad_dtype, no_checksum})
    CHECK(load_error(path).find('\n') == std::string::npos);
}
TEST_CASE("fuzz: truncated and bit-flipped checkpoints load exactly or are refused in one line",
          "[examples][checkpoint][fuzz]") {
  TempDir tmp;
  const std::string good = tmp / "good.pt";
  auto net = saved_net(good);
  const Bytes bytes = read_file(good);
  REQUIRE(bytes.size() > 1000);
  std::mt19937 rng(7);
  int refused = 0, exact = 0;
  for (int trial = 0; trial < 60; ++trial) {
    Bytes bad = bytes;
    if (trial < 12) {
      bad.resize(bytes.size() * static_cast<size_t>(trial + 1) / 13);  // truncated
    } else {
      const size_t at = rng() % bytes.size();
      bad[at] = static_cast<uint8_t>(bad[at] ^ (1u << (rng() % 8)));
    }
    const std::string path = tmp / ("bad" + std::to_string(trial) + ".pt");
    write_file(path, bad);
    std::string error;
    try {
      auto back = rar::examples::load_model(path);
      // A flip in bytes the format does not read (zip padding, comments) is harmless; any
      // flip that reaches the parameters must have been caught by the checksum.
      CHECK(same_parameters(net, back));
      ++exact;
    } catch (const std::exception& e) {
      error = e.what();
      INFO("trial " << trial << ": " << error);
      CHECK_THAT(error, Contains(path + ":"));
      CHECK(error.find('\n') == std::string::npos);
      ++refused;
    }
  }
  CHECK(refused >= 12);  // every truncation at least
  INFO("refused " << refused << ", loaded unchanged " << exact);
}

TEST_CASE("rar_mnist refuses a checkpoint whose parameter bytes were flipped, in one line, exit 1",
          "[examples][checkpoint]") {
  TempDir tmp;
  const std::string good = tmp / "good.pt";
  auto net = saved_net(good);
  // Find the fc weights' bytes in the file and flip one bit in the middle of them.
  const auto fc = net->parameters()[4].contiguous();
  REQUIRE(fc.numel() > 100);
  Bytes bytes = read_file(good);
  const auto* first = static_cast<const uint8_t*>(fc.data_ptr());
  const auto at = std::search(bytes.begin(), bytes.end(), first, first + 64);
  REQUIRE(at != bytes.end());
  *(at + 200) = static_cast<uint8_t>(*(at + 200) ^ 0x10);
  const std::string flipped = tmp / "flipped.pt";
  write_file(flipped, bytes);
  Bytes truncated = read_file(good);
  truncated.resize(truncated.size() / 2);
  const std::string cut = tmp / "cut.pt";
  write_file(cut, truncated);
  for (const auto& [path, expected] :
       std::vector<std::pair<std::string, std::string>>{
           {flipped, "checkpoint field 'checksum' does not match the parameters read"},
           {cut, "not a rar example checkpoint"}}) {
    std::string output;
    const int code = run_code(std::string(RAR_MNIST_BIN) + " explain --data " + (tmp / "none") +
                                  " --model '" + path + "'",
                              &output);
    INFO(output);
    CHECK(code == 1);
    CHECK_THAT(output, Contains("rar_mnist: error: " + path + ": ") && Contains(expected));
    CHECK(std::count(output.begin(), output.end(), '\n') == 1);
  }
}

TEST_CASE("results files: names with quotes, commas and newlines round-trip through CSV and JSON",
          "[examples][results]") {
  TempDir tmp;
  std::vector<rar::examples::EvalResult> results(3);
  results[0].name = "plain";
  results[1].name = "a \"quoted\", comma\nand newline \\ backslash\ttab";
  results[2].name = "nan row";
  for (size_t i = 0; i < results.size(); ++i) {
    results[i].natural_accuracy = 0.1 * static_cast<double>(i + 1) + 1e-13;  // needs 17 digits
    results[i].adversarial_accuracy = 0.25;
    results[i].topk_intersection = 0.5;
    results[i].kendall = i == 2 ? std::nan("") : -0.125;
    results[i].accuracy_images = 10;
    results[i].attacked_images = 4;
  }
  rar::examples::report(results, tmp / "r");
  const auto rows = parse_csv(slurp(tmp / "r.csv"));
  REQUIRE(rows.size() == 4);
  CHECK(rows[0][0] == "model");
  const auto json = parse_json(slurp(tmp / "r.json"));
  REQUIRE(json.kind == Json::array);
  REQUIRE(json.items.size() == 3);
  for (size_t i = 0; i < results.size(); ++i) {
    INFO("row " << i);
    REQUIRE(rows[i + 1].size() == rows[0].size());
    CHECK(rows[i + 1][0] == results[i].name);
    CHECK(std::stod(rows[i + 1][1]) == results[i].natural_accuracy);  // exact round trip
    const Json& row = json.items[i];
    CHECK(row.fields.at("model").text == results[i].name);
    CHECK(row.fields.at("NA").value == results[i].natural_accuracy);
    CHECK(row.fields.at("CO").kind == (i == 2 ? Json::null : Json::number));
  }
  CHECK(rows[3][4].empty());  // NaN: an empty CSV field
}
