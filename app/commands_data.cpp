// krause data fetch | where | use: downloading the data sets, showing where they are looked for,
// and choosing the data folder that is remembered between runs.
#include "app/commands.h"
#include "app/progress.h"
#include "app/run_job.h"
#include "data/data_dirs.h"
#include "training/engine.h"
#include "training/options.h"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <stdexcept>

namespace krause::cli {
namespace {

struct FetchOptions {
    std::string kind, dir, base_url;
};

DatasetKind kind_or_usage_error(const std::string& name, const std::string& command) {
    if (name.empty()) {
        throw UsageError(
            command + " needs a data set: " + join_choices(dataset_kind_choices(), ", "),
            "krause " + command + " mnist");
    }
    try {
        return parse_dataset_kind(name);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what(), "krause " + command + " mnist");
    }
}

// A folder given as ROOT/<kind folder> makes ROOT the data folder remembered for later runs, so
// `--data KIND` finds what was fetched there.
void remember_parent(DatasetKind kind, const std::string& dir, ProgressPrinter& progress) {
    const std::filesystem::path p = std::filesystem::absolute(dir).lexically_normal();
    const std::filesystem::path folder = p.filename().empty() ? p.parent_path() : p;
    if (folder.filename() != default_subdir(kind)) return;
    const std::string root = folder.parent_path().string();
    try {
        if (remembered_data_dir() != root) {
            remember_data_dir(root);
            progress.message("remembered " + root + " as the data folder");
        }
    } catch (const DataError& e) {
        progress.message(std::string("note: ") + e.what());
    }
}

void run_fetch(const FetchOptions& o) {
    const DatasetKind kind = kind_or_usage_error(o.kind, "data fetch");
    auto job = start_fetch(FetchRequest{to_string(kind), o.dir, o.base_url});
    ProgressPrinter progress("downloading");
    size_t lines_seen = 0;
    const auto last = run_job(*job, [&](const FetchSnapshot& s) {
        while (lines_seen < s.lines.size()) progress.message(s.lines[lines_seen++]);
        if (s.progress.done > 0) {
            progress.update(s.progress.done >> 10, s.progress.total >> 10, s.progress.rate / 1024,
                            "KiB", s.file);
        }
    });
    progress.finish();
    if (job->state() == JobState::Stopped)
        throw std::runtime_error("data fetch stopped; files already verified are kept");
    if (!o.dir.empty()) remember_parent(kind, o.dir, progress);
    fmt::print("{} is ready in {}\n", to_string(kind), last->dir);
}

void run_where() {
    fmt::print("data folders, in search order:\n");
    int n = 0;
    for (const auto& root : data_search_paths()) {
        std::error_code ec;
        const bool exists = std::filesystem::is_directory(root.path, ec);
        fmt::print("  {}. {}  ({}{})\n", ++n, root.path, root.origin, exists ? "" : ", missing");
    }
    for (DatasetKind kind : {DatasetKind::Mnist, DatasetKind::FashionMnist, DatasetKind::Cifar10}) {
        const DataLookup found = find_data_dir(kind);
        fmt::print("{:<14} {}\n", to_string(kind) + ":",
                   found.dir.empty() ? "not found" : found.dir);
    }
    fmt::print("fetch saves to: {}\n", default_fetch_root());
}

void run_use(const std::string& root, bool forget) {
    if (forget) {
        remember_data_dir("");
        fmt::print("forgot the remembered data folder\n");
        return;
    }
    if (root.empty())
        throw UsageError("data use needs a folder", "krause data use /path/to/data, or --forget");
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec)) {
        throw UsageError(root + ": no such folder",
                         "create it, or give the folder that holds mnist/, fashion-mnist/ or "
                         "cifar-10/");
    }
    const ChosenDataFolder chosen = resolve_data_folder(root);
    if (chosen.root.empty()) {
        throw UsageError(chosen.note, "or name it in each run: --data " + chosen.kind + ":" + root);
    }
    if (!chosen.note.empty()) fmt::print("{}\n", chosen.note);
    remember_data_dir(chosen.root);
    fmt::print("data folder: {}\n", remembered_data_dir());
    if (!chosen.has_data) {
        fmt::print("it holds no data set yet: `krause data fetch KIND` saves there\n");
    }
}

}  // namespace

void add_data_commands(CLI::App& app) {
    auto* d = app.add_subcommand("data", "Data sets: fetch them, see where they are found");
    d->callback([d] {
        if (d->get_subcommands().empty())
            throw UsageError("data needs a command: fetch, where or use",
                             "krause data fetch mnist");
    });

    auto fe = std::make_shared<FetchOptions>();
    auto* f = d->add_subcommand("fetch", "Download and verify a data set");
    // Optional for CLI11 so that a missing kind is reported like every other error of krause.
    f->add_option("kind", fe->kind, join_choices(dataset_kind_choices()));
    f->add_option("--dir", fe->dir,
                  "destination folder of this data set (default: <data folder>/<kind>, see "
                  "`krause data where`)")
        ->check(non_empty());
    f->add_option("--base-url", fe->base_url, "fetch from this mirror instead (file:// works)");
    f->callback([fe] { run_fetch(*fe); });

    auto* w = d->add_subcommand("where", "Show the data folders in search order and what each has");
    w->callback([] { run_where(); });

    struct UseOptions {
        std::string root;
        bool forget = false;
    };
    auto uo = std::make_shared<UseOptions>();
    auto* u = d->add_subcommand("use", "Remember a data folder (holding mnist/, cifar-10/, ...)");
    u->add_option("folder", uo->root, "the folder, searched right after $KRAUSE_DATA_DIR")
        ->check(non_empty());
    u->add_flag("--forget", uo->forget, "forget the remembered folder");
    u->callback([uo] { run_use(uo->root, uo->forget); });
}

}  // namespace krause::cli
