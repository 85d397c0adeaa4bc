// Test helpers for code that reads the environment: variables and the working folder set for one
// test and restored afterwards, and a whole data-folder search cut off from the user's own files.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace krause::test {

// Sets (value) or clears (nullptr) an environment variable until the end of the scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        const char* old = std::getenv(name);
        had_ = old != nullptr;
        if (had_) old_ = old;
        if (value)
            setenv(name, value, 1);
        else
            unsetenv(name);
    }
    ~ScopedEnv() {
        if (had_)
            setenv(name_.c_str(), old_.c_str(), 1);
        else
            unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_, old_;
    bool had_ = false;
};

class ScopedCwd {
public:
    explicit ScopedCwd(const std::string& dir) : old_(std::filesystem::current_path()) {
        std::filesystem::current_path(dir);
    }
    ~ScopedCwd() {
        std::error_code ec;
        std::filesystem::current_path(old_, ec);
    }
    ScopedCwd(const ScopedCwd&) = delete;
    ScopedCwd& operator=(const ScopedCwd&) = delete;

private:
    std::filesystem::path old_;
};

// Every source of the data-folder search pointed into `root` (which must exist): no
// KRAUSE_DATA_DIR, HOME = root/home, XDG_CONFIG_HOME = root/config, XDG_DATA_HOME = root/share,
// working folder = root/work. Only /usr/share/datasets stays the system's.
class IsolatedDataSearch {
public:
    explicit IsolatedDataSearch(const std::string& root)
        : home_("HOME", make(root + "/home").c_str()),
          config_("XDG_CONFIG_HOME", make(root + "/config").c_str()),
          share_("XDG_DATA_HOME", make(root + "/share").c_str()),
          data_dir_("KRAUSE_DATA_DIR", nullptr),
          cwd_(make(root + "/work")) {}

private:
    // setenv copies the value, so a temporary string is enough.
    static std::string make(const std::string& dir) {
        std::filesystem::create_directories(dir);
        return dir;
    }
    ScopedEnv home_, config_, share_, data_dir_;
    ScopedCwd cwd_;
};

}  // namespace krause::test
