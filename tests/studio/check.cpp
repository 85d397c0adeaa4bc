// studio_check: verifies a scripted krause-studio run from its state dumps (NN-step.json), its
// screenshots (NN-step.png) and frame_times.json, against a list of expectations.
//
// Expectation lines (# comments):
//   json STEP PATH OP VALUE     a field of the step's state dump; PATH is dotted (maps.0.1.sink)
//   image STEP REGION OP VALUE  grey-level standard deviation inside a screen region that the
//                               step's dump names (e.g. sample_grid): > 0 means "not blank"
//   frames PATH OP VALUE        a field of frame_times.json (e.g. while_training.p95_ms)
//   absent STEP                 the run wrote no files for the step (it ended before it)
// STEP is a step name without its number: "sampled" matches 07-sampled.json. OP: == != < <= > >=,
// and ~ (the text contains VALUE).
#include <stb_image.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Failure {
    std::string what;
};

json read_json(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Failure{"cannot read " + path.string()};
    try {
        return json::parse(in);
    } catch (const std::exception& e) {
        throw Failure{path.string() + ": " + e.what()};
    }
}

// The state dumps of the step: DIR/NN-STEP.json.
std::vector<fs::path> step_dumps(const fs::path& dir, const std::string& step) {
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string stem = entry.path().stem().string();
        const auto dash = stem.find('-');
        if (entry.path().extension() == ".json" && dash != std::string::npos &&
            stem.substr(dash + 1) == step) {
            found.push_back(entry.path());
        }
    }
    return found;
}

// The step's files without extension: DIR/NN-STEP, which must exist exactly once.
fs::path find_step(const fs::path& dir, const std::string& step) {
    std::vector<fs::path> found = step_dumps(dir, step);
    if (found.empty()) throw Failure{"no step named '" + step + "' in " + dir.string()};
    if (found.size() > 1) throw Failure{"step name '" + step + "' is not unique"};
    return found.front().replace_extension();
}

const json& lookup(const json& root, const std::string& path) {
    const json* node = &root;
    std::stringstream parts(path);
    std::string part;
    while (std::getline(parts, part, '.')) {
        if (node->is_array()) {
            const size_t i = std::strtoul(part.c_str(), nullptr, 10);
            if (i >= node->size()) throw Failure{path + ": index " + part + " out of range"};
            node = &(*node)[i];
        } else if (node->is_object() && node->contains(part)) {
            node = &(*node)[part];
        } else {
            throw Failure{path + ": no field '" + part + "'"};
        }
    }
    return *node;
}

bool compare(const json& actual, const std::string& op, const std::string& expected) {
    if (actual.is_number()) {
        const double a = actual.get<double>(), e = std::strtod(expected.c_str(), nullptr);
        if (op == "==") return a == e;
        if (op == "!=") return a != e;
        if (op == "<") return a < e;
        if (op == "<=") return a <= e;
        if (op == ">") return a > e;
        if (op == ">=") return a >= e;
    } else {
        const std::string a = actual.is_string() ? actual.get<std::string>() : actual.dump();
        if (op == "==") return a == expected;
        if (op == "!=") return a != expected;
        if (op == "~") return a.find(expected) != std::string::npos;
    }
    throw Failure{"operator " + op + " does not apply to " + actual.dump()};
}

double region_stddev(const fs::path& png, const json& rect) {
    int w = 0, h = 0, n = 0;
    unsigned char* pixels = stbi_load(png.string().c_str(), &w, &h, &n, 3);
    if (!pixels) throw Failure{"cannot read " + png.string()};
    const int x0 = std::max(0, rect[0].get<int>()), y0 = std::max(0, rect[1].get<int>());
    const int x1 = std::min(w, x0 + rect[2].get<int>()), y1 = std::min(h, y0 + rect[3].get<int>());
    double sum = 0, sum_sq = 0;
    long count = 0;
    for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
            const unsigned char* p = pixels + (static_cast<size_t>(y) * w + x) * 3;
            const double grey = (p[0] + p[1] + p[2]) / 3.0;
            sum += grey;
            sum_sq += grey * grey;
            ++count;
        }
    }
    stbi_image_free(pixels);
    if (count == 0) throw Failure{"region is empty or off screen: " + rect.dump()};
    const double mean = sum / count;
    return std::sqrt(std::max(0.0, sum_sq / count - mean * mean));
}

std::string check_line(const fs::path& dir, const std::vector<std::string>& w) {
    if (w[0] == "json" && w.size() == 5) {
        const json dump = read_json(find_step(dir, w[1]).string() + ".json");
        const json& actual = lookup(dump, w[2]);
        if (!compare(actual, w[3], w[4])) throw Failure{w[2] + " is " + actual.dump()};
        return w[2] + " = " + actual.dump();
    }
    if (w[0] == "image" && w.size() == 5) {
        const fs::path base = find_step(dir, w[1]);
        const json dump = read_json(base.string() + ".json");
        const json& rect = lookup(dump, "regions." + w[2]);
        const double sd = region_stddev(base.string() + ".png", rect);
        if (!compare(json(sd), w[3], w[4])) {
            throw Failure{w[2] + " grey-level stddev is " + std::to_string(sd)};
        }
        return w[2] + " stddev " + std::to_string(sd);
    }
    if (w[0] == "frames" && w.size() == 4) {
        const json times = read_json(dir / "frame_times.json");
        const json& actual = lookup(times, w[1]);
        if (!compare(actual, w[2], w[3])) throw Failure{w[1] + " is " + actual.dump()};
        return w[1] + " = " + actual.dump();
    }
    if (w[0] == "absent" && w.size() == 2) {
        const std::vector<fs::path> found = step_dumps(dir, w[1]);
        if (!found.empty()) throw Failure{"the run reached it: " + found.front().string()};
        return "no step named '" + w[1] + "'";
    }
    throw Failure{"cannot parse this expectation"};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: studio_check SHOTS_DIR EXPECTATIONS\n");
        return 2;
    }
    const fs::path dir = argv[1];
    std::ifstream in(argv[2]);
    if (!in) {
        std::fprintf(stderr, "studio_check: cannot read %s\n", argv[2]);
        return 2;
    }
    int failures = 0, checks = 0;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        std::vector<std::string> words;
        std::stringstream split(line.substr(0, line.find('#')));
        for (std::string word; split >> word;) words.push_back(word);
        if (words.empty()) continue;
        ++checks;
        try {
            const std::string seen = check_line(dir, words);
            std::printf("ok    %d: %s\n", number, seen.c_str());
        } catch (const Failure& f) {
            ++failures;
            std::printf("FAIL  %d: %s -- %s\n", number, line.c_str(), f.what.c_str());
        }
    }
    std::printf("%d of %d expectations hold\n", checks - failures, checks);
    return failures == 0 && checks > 0 ? 0 : 1;
}
