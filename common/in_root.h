// Paths below a directory that stands for a root filesystem (an image's
// layers, a container's root): walked as the kernel would walk them there.
#pragma once

#include <string>

namespace crius {

// Whether `path`, walked component by component below the directory open
// as `root`, climbs out of it through a relative symlink of the tree
// ("../../.."); `via` names the last such symlink seen. RESOLVE_IN_ROOT
// would keep the path inside the root anyway; a request that tries it is
// refused all the same. An absolute symlink counts from the root
// (/var/run -> /run is common), and a component that is not there yet is
// a plain one.
bool EscapesRoot(int root, const std::string& path, std::string* via);

}  // namespace crius
