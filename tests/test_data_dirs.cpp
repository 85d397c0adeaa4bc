// Where data is found without settings: the search order, the first folder with a kind's files,
// the remembered folder, the not-found message, and the engine's fetch job over file:// URLs.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "data/data_dirs.h"
#include "data/fetch.h"
#include "data_env.h"
#include "test_util.h"
#include "training/engine.h"

namespace krause {
namespace {

namespace fs = std::filesystem;
using test::IsolatedDataSearch;
using test::ScopedEnv;

void touch(const std::string& path) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << "x";
}

// The four MNIST names the loader accepts (only their presence matters here).
void fake_idx_files(const std::string& dir) {
    for (const char* n : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte", "t10k-labels.idx1-ubyte.gz"})
        touch(dir + "/" + n);
}

std::vector<std::string> paths(const std::vector<DataRoot>& roots) {
    std::vector<std::string> out;
    for (const auto& r : roots) out.push_back(r.path);
    return out;
}

class DataDirs : public ::testing::Test {
protected:
    test::TempDir tmp_{"datadirs"};
    void SetUp() override {
        real_data_ = test::data_dir();  // read before the isolation clears the variable
        root_ = fs::weakly_canonical(tmp_.path()).string();
        isolated_ = std::make_unique<IsolatedDataSearch>(root_);
        user_ = root_ + "/share/krause-studio/data";
        work_ = root_ + "/work/data";
    }
    void TearDown() override {
        isolated_.reset();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    std::string root_, user_, work_, real_data_;
    std::unique_ptr<IsolatedDataSearch> isolated_;
};

TEST_F(DataDirs, SearchOrderFollowsTheDocumentedSources) {
    // Nothing set: the user data folder, ./data and the system folder, even when missing.
    EXPECT_EQ(paths(data_search_paths()),
              (std::vector<std::string>{user_, work_, "/usr/share/datasets"}));
    EXPECT_EQ(config_dir(), root_ + "/config/krause-studio");

    remember_data_dir(root_ + "/picked/");
    ScopedEnv env("KRAUSE_DATA_DIR", (root_ + "/env").c_str());
    const auto roots = data_search_paths();
    EXPECT_EQ(paths(roots), (std::vector<std::string>{root_ + "/env", root_ + "/picked", user_,
                                                      work_, "/usr/share/datasets"}));
    std::vector<std::string> origins;
    for (const auto& r : roots) origins.push_back(r.origin);
    EXPECT_EQ(origins, (std::vector<std::string>{"KRAUSE_DATA_DIR", "last used", "user data folder",
                                                 "./data", "system"}));

    // The same folder from two sources is listed once, at its first place.
    ScopedEnv same("KRAUSE_DATA_DIR", (root_ + "/picked").c_str());
    EXPECT_EQ(paths(data_search_paths()).size(), 4u);

    // Without XDG variables the folders follow HOME.
    ScopedEnv no_config("XDG_CONFIG_HOME", nullptr);
    ScopedEnv no_share("XDG_DATA_HOME", nullptr);
    EXPECT_EQ(user_data_dir(), root_ + "/home/.local/share/krause-studio/data");
    EXPECT_EQ(config_dir(), root_ + "/home/.config/krause-studio");
}

TEST_F(DataDirs, FirstFolderWithTheKindsFilesWins) {
    ScopedEnv env("KRAUSE_DATA_DIR", (root_ + "/env").c_str());
    fs::create_directories(root_ + "/env/mnist");  // a folder without the files does not count
    touch(user_ + "/mnist/train-images-idx3-ubyte.gz");  // one file is not enough
    fake_idx_files(work_ + "/mnist");
    fake_idx_files(root_ + "/system-like/mnist");

    DataLookup found = find_data_dir(DatasetKind::Mnist);
    EXPECT_EQ(found.dir, work_ + "/mnist");
    EXPECT_EQ(found.looked_in,
              (std::vector<std::string>{root_ + "/env/mnist", user_ + "/mnist", work_ + "/mnist"}));
    EXPECT_EQ(parse_dataset_spec("mnist").dir, work_ + "/mnist");
    EXPECT_EQ(find_data_dir("MNIST").dir, work_ + "/mnist");

    // An earlier folder that gains the files takes over.
    fake_idx_files(user_ + "/mnist");
    EXPECT_EQ(find_data_dir(DatasetKind::Mnist).dir, user_ + "/mnist");

    // CIFAR-10: the six batches, plain or gzipped, also inside cifar-10-batches-bin/.
    const std::string batches = root_ + "/env/cifar-10/cifar-10-batches-bin/";
    for (const char* b : {"data_batch_1.bin", "data_batch_2.bin.gz", "data_batch_3.bin",
                          "data_batch_4.bin", "data_batch_5.bin"})
        touch(batches + b);
    EXPECT_NE(find_data_dir(DatasetKind::Cifar10).dir, root_ + "/env/cifar-10");
    touch(batches + "test_batch.bin.gz");
    EXPECT_EQ(find_data_dir(DatasetKind::Cifar10).dir, root_ + "/env/cifar-10");
}

TEST_F(DataDirs, NotFoundSaysWhereItLookedAndWhatToDo) {
    const DataLookup none = find_data_dir(DatasetKind::Cifar10);
    ASSERT_TRUE(none.dir.empty());
    EXPECT_EQ(none.looked_in, (std::vector<std::string>{user_ + "/cifar-10", work_ + "/cifar-10",
                                                        "/usr/share/datasets/cifar-10"}));
    try {
        parse_dataset_spec("cifar10");
        FAIL() << "expected DataError";
    } catch (const DataError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const std::string& n :
             {"looked in: " + user_ + "/cifar-10, " + work_ +
                  "/cifar-10, /usr/share/datasets/cifar-10",
              std::string("krause data fetch cifar10"),
              "copy the files into " + user_ + "/cifar-10", std::string("--data cifar10:DIR")})
            EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
        EXPECT_EQ(msg.find("apt-get"), std::string::npos) << msg;
    }
    const std::string fashion = data_not_found_message(
        DatasetKind::FashionMnist, DataLookup{"", {"/a/fashion-mnist", "/b/fashion-mnist"}});
    EXPECT_NE(fashion.find("looked in: /a/fashion-mnist, /b/fashion-mnist"), std::string::npos);
    EXPECT_NE(fashion.find("apt-get install dataset-fashion-mnist"), std::string::npos) << fashion;
    // A malformed spec is still the caller's mistake, not missing data.
    EXPECT_THROW(parse_dataset_spec("mnist:"), std::invalid_argument);
    EXPECT_EQ(parse_dataset_spec("cifar10:/some/where:odd").dir, "/some/where:odd");
}

TEST_F(DataDirs, RememberedFolderRoundTrip) {
    EXPECT_EQ(remembered_data_dir(), "");
    fs::create_directories(root_ + "/work/mine");
    remember_data_dir("mine/");  // relative to the working folder, stored absolute
    EXPECT_EQ(remembered_data_dir(), root_ + "/work/mine");
    EXPECT_EQ(test::read_file(root_ + "/config/krause-studio/data-dir"), root_ + "/work/mine\n");
    EXPECT_EQ(data_search_paths().front().origin, "last used");
    EXPECT_EQ(default_fetch_root(), root_ + "/work/mine");
    remember_data_dir(root_ + "/other");
    EXPECT_EQ(remembered_data_dir(), root_ + "/other");
    remember_data_dir("");
    EXPECT_EQ(remembered_data_dir(), "");
    EXPECT_EQ(default_fetch_root(), user_);
    {
        ScopedEnv env("KRAUSE_DATA_DIR", (root_ + "/env").c_str());
        EXPECT_EQ(default_fetch_root(), root_ + "/env");
    }

    // An unreadable file is ignored (here a folder where the file belongs).
    fs::create_directories(root_ + "/config/krause-studio/data-dir");
    EXPECT_EQ(remembered_data_dir(), "");
    EXPECT_EQ(paths(data_search_paths()).front(), user_);
    EXPECT_THROW(remember_data_dir(root_ + "/x"), DataError);

    // Without HOME or XDG_CONFIG_HOME there is nowhere to remember.
    ScopedEnv no_home("HOME", nullptr);
    ScopedEnv no_config("XDG_CONFIG_HOME", nullptr);
    EXPECT_EQ(config_dir(), "");
    EXPECT_EQ(remembered_data_dir(), "");
    EXPECT_THROW(remember_data_dir(root_ + "/x"), DataError);
}

TEST_F(DataDirs, AChosenDataSetFolderStandsForTheFolderAboveIt) {
    const std::string top = root_ + "/picked";
    fake_idx_files(top + "/mnist");
    const std::string batches = top + "/cifar-10/cifar-10-batches-bin";
    for (const char* b : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
        touch(batches + "/" + b);

    // The data folder itself is taken as it is, with or without a trailing slash.
    for (const std::string& given : {top, top + "/"}) {
        const ChosenDataFolder as_is = resolve_data_folder(given);
        EXPECT_EQ(as_is.root, top);
        EXPECT_EQ(as_is.note, "");
        EXPECT_TRUE(as_is.has_data);
    }
    // A data set's own folder, or CIFAR-10's batch folder inside it, stands for the folder above.
    for (const std::string& inner : {top + "/mnist", top + "/mnist/", top + "/cifar-10", batches}) {
        const ChosenDataFolder up = resolve_data_folder(inner);
        EXPECT_EQ(up.root, top) << inner;
        EXPECT_TRUE(up.has_data) << inner;
        EXPECT_NE(up.note.find("so the data folder is " + top), std::string::npos) << up.note;
    }
    EXPECT_EQ(resolve_data_folder(top + "/mnist").kind, "mnist");
    EXPECT_EQ(resolve_data_folder(batches).kind, "cifar10");

    // Files under another folder name: no data folder can find them there.
    fake_idx_files(root_ + "/downloads/digits");
    const ChosenDataFolder odd = resolve_data_folder(root_ + "/downloads/digits");
    EXPECT_EQ(odd.root, "");
    EXPECT_EQ(odd.kind, "mnist");
    EXPECT_NE(odd.note.find("move them into " + root_ + "/downloads/digits/mnist"),
              std::string::npos)
        << odd.note;

    // A folder with nothing yet is taken as it is (a download may fill it).
    fs::create_directories(root_ + "/empty");
    const ChosenDataFolder empty = resolve_data_folder(root_ + "/empty");
    EXPECT_EQ(empty.root, root_ + "/empty");
    EXPECT_FALSE(empty.has_data);
    EXPECT_EQ(empty.note, "");
}

TEST_F(DataDirs, FashionMnistFromTheSystemWhenNothingElseHasIt) {
    const std::string system_dir = "/usr/share/datasets/fashion-mnist";
    if (!dataset_files_present(DatasetKind::FashionMnist, system_dir))
        GTEST_SKIP() << system_dir << " not present (package dataset-fashion-mnist)";
    EXPECT_EQ(find_data_dir(DatasetKind::FashionMnist).dir, system_dir);
    fake_idx_files(work_ + "/fashion-mnist");
    EXPECT_EQ(find_data_dir(DatasetKind::FashionMnist).dir, work_ + "/fashion-mnist");
}

// ---- the engine's fetch job ----

template <class Snapshot>
void wait_for(Job<Snapshot>& job) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!job.done() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(job.done());
    job.wait();
}

TEST_F(DataDirs, FetchJobDownloadsIntoTheDefaultFolderWithProgress) {
    const std::string real = real_data_;
    if (real.empty() || !dataset_files_present(DatasetKind::Mnist, real + "/mnist"))
        GTEST_SKIP() << "KRAUSE_DATA_DIR not set: no copy of the official MNIST files to mirror";
    auto job = start_fetch(FetchRequest{"mnist", "", "file://" + real + "/mnist"});
    EXPECT_EQ(job->snapshot()->dir, user_ + "/mnist");  // known before the job runs
    bool saw_bytes = false;
    while (!job->done()) {
        const auto s = job->snapshot();
        saw_bytes = saw_bytes || (s->progress.done > 0 && s->progress.unit == "bytes");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    const auto last = job->snapshot();
    EXPECT_TRUE(last->done);
    EXPECT_TRUE(saw_bytes || last->progress.done > 0);
    EXPECT_EQ(last->progress.done, last->progress.total);
    EXPECT_EQ(last->lines.back(), "mnist: ready in " + user_ + "/mnist");
    // What was fetched is found, and loads.
    EXPECT_EQ(find_data_dir(DatasetKind::Mnist).dir, user_ + "/mnist");
    EXPECT_EQ(load_dataset(parse_dataset_spec("mnist"), Split::Test, 5).size(), 5);
}

TEST_F(DataDirs, FetchJobFailureIsOneLineAndStopIsStopped) {
    const std::string mirror = root_ + "/mirror";
    fs::create_directories(mirror);
    auto failed = start_fetch(FetchRequest{"fashion-mnist", root_ + "/out", "file://" + mirror});
    wait_for(*failed);
    EXPECT_EQ(failed->state(), JobState::Failed);
    const std::string error = failed->error();
    EXPECT_NE(error.find("cannot download fashion-mnist"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;

    // Big enough that the stop arrives while the first file is on its way.
    for (const auto& f : official_files(DatasetKind::FashionMnist))
        std::ofstream(mirror + "/" + f.name) << std::string(size_t(8) << 20, 'x');
    auto stopped = start_fetch(FetchRequest{"fashion-mnist", root_ + "/out2", "file://" + mirror});
    stopped->request_stop();
    wait_for(*stopped);
    EXPECT_EQ(stopped->state(), JobState::Stopped) << stopped->error();
    if (fs::exists(root_ + "/out2")) {
        for (const auto& e : fs::directory_iterator(root_ + "/out2"))
            ADD_FAILURE() << "left behind: " << e.path();
    }

    EXPECT_THROW(start_fetch(FetchRequest{"imagenet", "", ""}), std::invalid_argument);
}

}  // namespace
}  // namespace krause
