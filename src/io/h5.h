#pragma once
// Thin RAII wrappers over the HDF5 C API. Every C call is checked once, here, and a failure throws IoError naming
// the call's object ("cannot open file 'x.h5'"). HDF5's own error stack printing is switched off.
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gradfit::io {

// Owns one hid_t and closes it with the right H5*close on destruction.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  hid_t id() const { return id_; }
  // Closes now and throws IoError "`what`: <HDF5's reason>" if that fails (the destructor cannot report it).
  void close(const std::string& what);

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Shape and element class of a dataset.
struct DatasetInfo {
  std::vector<int64_t> shape;
  H5T_class_t type_class = H5T_NO_CLASS;
};

// One column of a table (an HDF5 compound dataset): text, integers or reals, one value per row.
struct TableColumn {
  std::string name;
  std::vector<std::string> texts;  // fixed-length strings, as long as the longest
  std::vector<int64_t> ints;
  std::vector<double> reals;
};

// A file or a group: something that holds datasets, groups and attributes.
class Location {
 public:
  Location(Handle handle, std::string name) : handle_(std::move(handle)), name_(std::move(name)) {}
  hid_t id() const { return handle_.id(); }
  const std::string& name() const { return name_; }

  Location create_group(const std::string& name) const;
  Location open_group(const std::string& name) const;
  bool has(const std::string& name) const;
  // Names of the links in group `group` (relative to this location), in name order.
  std::vector<std::string> children(const std::string& group) const;
  // Copies object `source_path` of `source` (with everything below it) to `name` here.
  void copy_from(const Location& source, const std::string& source_path, const std::string& name) const;

  // Datasets of doubles or int64 with the given shape (row-major); `data` holds the product of `shape` values.
  void write(const std::string& name, const std::vector<int64_t>& shape, const double* data) const;
  void write(const std::string& name, const std::vector<int64_t>& shape, const float* data) const;
  void write(const std::string& name, const std::vector<int64_t>& shape, const int64_t* data) const;
  void write(const std::string& name, const std::vector<double>& values) const;
  void write(const std::string& name, const std::vector<int64_t>& values) const;

  // A 1-D compound dataset, one record per row; every column holds the same number of values in exactly one of
  // its vectors. Reads into numpy/pandas as a structured array.
  void write_table(const std::string& name, const std::vector<TableColumn>& columns) const;

  // Raw bytes as a 1-D dataset of unsigned chars.
  void write_bytes(const std::string& name, const std::string& bytes) const;
  std::string read_bytes(const std::string& name) const;

  void write_attribute(const std::string& name, const std::string& value) const;
  void write_attribute(const std::string& name, double value) const;
  void write_attribute(const std::string& name, int64_t value) const;
  void write_attribute(const std::string& name, const std::vector<double>& values) const;
  void write_attribute(const std::string& name, const std::vector<int64_t>& values) const;

  DatasetInfo dataset_info(const std::string& name) const;
  bool has_attribute(const std::string& name) const;
  double read_double_attribute(const std::string& name) const;
  int64_t read_int_attribute(const std::string& name) const;
  // A 1-D (or scalar) attribute of integers, e.g. a run's `widths`, or of numbers.
  std::vector<int64_t> read_int_vector_attribute(const std::string& name) const;
  std::vector<double> read_double_vector_attribute(const std::string& name) const;
  std::string read_string_attribute(const std::string& name) const;
  // Rows [row_begin, row_begin + rows) of a 1-D or 2-D dataset, converted to double, row-major. Reads only those
  // rows from disk (a hyperslab).
  std::vector<double> read_rows(const std::string& name, int64_t row_begin, int64_t rows) const;

  // An empty dataset of reals (float64, or float32 when `float32`) of `shape` (1-D or 2-D), to be filled a block of
  // rows at a time by write_rows, possibly by several processes in turn.
  void create_dataset(const std::string& name, const std::vector<int64_t>& shape, bool float32) const;
  // Writes rows [row_begin, row_begin + rows) of an existing 1-D or 2-D dataset (a hyperslab) from `data`, row-major
  // (rows × the dataset's columns values), converted to the dataset's type.
  void write_rows(const std::string& name, int64_t row_begin, int64_t rows, const double* data) const;
  void write_rows(const std::string& name, int64_t row_begin, int64_t rows, const float* data) const;

 protected:
  Handle& handle() { return handle_; }

 private:
  std::string where(const std::string& object) const;
  // A 1-D (or scalar) attribute's elements read as `type` into `count` × `element_bytes` bytes.
  std::vector<char> read_vector_attribute(const std::string& name, hid_t type, size_t element_bytes) const;
  Handle handle_;
  std::string name_;
};

class File : public Location {
 public:
  // Creates (truncating) a file for writing.
  static File create(const std::string& path);
  static File open_read_only(const std::string& path);
  // Opens an existing file to change it (e.g. to fill datasets made by create_dataset).
  static File open_read_write(const std::string& path);
  const std::string& path() const { return name(); }
  // Flushes and closes a file being written, checking both (a full disk shows here): throws IoError with HDF5's
  // reason. Every object opened in it must be closed first.
  void close();

 private:
  using Location::Location;
};

// Reads every dataset of the file `path` whole, so that each one's checksum is checked (datasets are written with
// HDF5's Fletcher32 filter). Throws IoError naming the file, the dataset and HDF5's reason.
void verify_file(const std::string& path);

// What HDF5's error stack says about the last failed call (its innermost description), or "" when it says nothing.
std::string hdf5_reason();

// Creates `path` whole or not at all: `fill` writes a new temporary file beside it, which is closed, made durable
// and renamed over `path` (after `before_rename`, a test seam). On any error the temporary is removed.
void write_file_atomically(const std::string& path, const std::function<void(const File&)>& fill,
                           const std::function<void()>& before_rename = {});

// Makes `temporary` durable (fsync) and renames it over `path`, then syncs the folder: after a crash at any
// instant `path` is either its old version or the new one, whole.
void durable_rename(const std::string& temporary, const std::string& path);

}  // namespace gradfit::io
