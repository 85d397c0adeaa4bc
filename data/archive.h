// Taking named files out of a tar or tar.gz archive (the CIFAR-10 download), read by libarchive.
#pragma once

#include <string>
#include <vector>

#include "data/download.h"

namespace krause {

// Extracts the regular-file members named in `members` (paths as stored in the archive; a leading
// "./" is ignored) into dest_dir, keeping their relative paths; nothing else is written, so names
// in the archive cannot reach outside dest_dir. Each file appears atomically (temp file + rename)
// and hooks.message hears one line per file. Throws DataError naming the archive when it is
// corrupt, truncated or not a tar archive, or when a wanted member is missing; FetchStopped when
// hooks.stop is set.
void extract_tar(const std::string& archive, const std::string& dest_dir,
                 const std::vector<std::string>& members, const FetchHooks& hooks = {});

}  // namespace krause
