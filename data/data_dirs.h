// Where the data sets are found without any setting: one data folder for the application, holding
// mnist/, fashion-mnist/ and cifar-10/, looked for in a fixed order. docs/data.md describes it.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace krause {

// A candidate data folder and why it is on the list.
struct DataRoot {
    std::string path;    // absolute
    std::string origin;  // "KRAUSE_DATA_DIR", "last used", "user data folder", "./data", "system"
};

// The data folders in search order, without duplicates; a source that is not set (no variable,
// nothing remembered) is left out, one that is set but missing on disk is kept:
//   1. $KRAUSE_DATA_DIR
//   2. the folder last used (remember_data_dir), read from config_dir()/data-dir
//   3. user_data_dir(): $XDG_DATA_HOME/krause-studio/data, ~/.local/share/krause-studio/data
//   4. ./data (of the working folder)
//   5. /usr/share/datasets (Debian's dataset-fashion-mnist installs fashion-mnist/ there)
std::vector<DataRoot> data_search_paths();

// ROOT/mnist, ROOT/fashion-mnist, ROOT/cifar-10.
std::string kind_dir(const std::string& root, DatasetKind kind);

struct DataLookup {
    std::string dir;                     // the first kind folder that has the files; "" if none
    std::vector<std::string> looked_in;  // every kind folder tried, in order
};
// The first kind_dir(root, kind) of data_search_paths() that has the kind's files
// (dataset_files_present).
DataLookup find_data_dir(DatasetKind kind);
DataLookup find_data_dir(const std::string& kind);  // by name; throws std::invalid_argument

// "no mnist data found (looked in: A, B); run `krause data fetch mnist`, ..." for a failed lookup.
std::string data_not_found_message(DatasetKind kind, const DataLookup& lookup);

// The application's configuration folder: $XDG_CONFIG_HOME/krause-studio, or
// ~/.config/krause-studio; "" when neither variable is set.
std::string config_dir();
// $XDG_DATA_HOME/krause-studio/data, or ~/.local/share/krause-studio/data; "" without HOME.
std::string user_data_dir();

// The remembered data folder, or "" when none is stored or the file cannot be read.
std::string remembered_data_dir();
// Stores root (made absolute) as the folder last used; an empty root forgets it. The file is
// replaced atomically. Throws DataError naming the file when it cannot be written.
void remember_data_dir(const std::string& root);

// A folder chosen as the data folder, read the way it was most likely meant. Its own kind
// folders (FOLDER/mnist, ...) make it the data folder; a data set's own folder stands for the
// folder above it: ROOT/mnist, ROOT/fashion-mnist, ROOT/cifar-10 and
// ROOT/cifar-10/cifar-10-batches-bin all give ROOT. A folder holding a data set's files under
// another name cannot be a data folder (the search looks in ROOT/<kind folder> only).
struct ChosenDataFolder {
    std::string root;  // absolute, no trailing slash; "" when the folder cannot be the data folder
    std::string note;  // one line saying what was read into the choice, or why it cannot be one;
                       // "" when the folder is taken as it is
    bool has_data = false;  // whether root holds any data set
    std::string kind;       // the data set whose files the folder itself holds, if any
};
ChosenDataFolder resolve_data_folder(const std::string& folder);

// Where `krause data fetch` puts a data set when no folder is given: $KRAUSE_DATA_DIR, else the
// remembered folder, else user_data_dir().
std::string default_fetch_root();

}  // namespace krause
