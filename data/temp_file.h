// A file that is deleted unless release() is called: failure paths leave no partial download or
// half-extracted member behind.
#pragma once

#include <cstdio>
#include <string>
#include <utility>

namespace krause {

class TempFile {
public:
    explicit TempFile(std::string path) : path_(std::move(path)) {}
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (!path_.empty()) std::remove(path_.c_str());
    }
    void release() { path_.clear(); }

private:
    std::string path_;
};

}  // namespace krause
