#pragma once
// Questions about paths on the file system, asked before a command writes a file.
#include <string>

namespace gradfit::io {

// Whether `a` and `b` name one file: the same path once resolved (symbolic links, "..", a relative path), or, when
// both exist, the same file by device and inode (a hard link). A command checks its output against its inputs
// with it, so that no command ever writes over a file it reads.
bool same_file(const std::string& a, const std::string& b);

}  // namespace gradfit::io
